"""The stream process's Prometheus series (served by ``/metrics`` with the others: the
stack's multiprocess mode merges every process's files). ``docs/streaming.md`` says what
each means."""
from prometheus_client import Counter, Gauge

STREAM_OPEN = Gauge(
    "stream_connections",
    "Streams open now (SSE and WebSocket, both APIs), summed over the stream processes.",
    multiprocess_mode="livesum",
)

STREAM_EVENTS = Counter(
    "stream_events_total",
    "Events handed to open streams (one per stream), by event: update or delete.",
    ["event"],
)

STREAMS_CLOSED = Counter(
    "stream_closed_total",
    "Streams closed, by reason: client (the client went), slow (its buffer overflowed), revoked (its token "
    "or user no longer valid), redis (the pub/sub connection broke), shutdown.",
    ["reason"],
)
