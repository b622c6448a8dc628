"""Readers of the live streams that behave as careful clients do, and the audit of what they got.

A ``V1Reader`` holds ``GET /v1/timeline/home/stream`` open in a thread of its own.
When the connection ends (the server closed it, its process died, a proxy gave
up, nothing came for longer than three heartbeats) it waits, backing off from
``BACKOFF_FIRST`` to ``BACKOFF_MOST`` seconds, and reconnects with
``Last-Event-ID`` set to the last ``id:`` it received, as a browser's
``EventSource`` does. It keeps every ``tweet`` event in arrival order (so a
tweet received twice is seen), the ``delete`` events, and each connection's
opening answer, start, end and the ``Last-Event-ID`` it sent.

A ``MastodonReader`` holds Mastodon's WebSocket (``/api/v1/streaming?stream=user``).
Mastodon's streams do not resume: it only reconnects, and what it received is
kept per connection (a tweet twice within one connection is a duplicate).

``audit_v1`` compares what a ``/v1`` reader received with the head of its
timeline (``timeline_head``): the same tweets, none twice. Nothing here imports
the product; the fault suite (``chaos.run``) and the soak (``bench.soak``) use it.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

V1_PATH = "/v1/timeline/home/stream"
MASTODON_PATH = "/api/v1/streaming"
BACKOFF_FIRST, BACKOFF_MOST = 0.2, 2.0
# Behind a load balancer that names the server of each answer in this header (the soak's haproxy), each
# connection records it.
SERVED_BY = "X-Served-By"
# Nothing at all (not even the heartbeat comment) for this long: the connection is taken as dead.
SILENCE_SECONDS = 45.0


@dataclass
class Arrival:
    tweet_id: int
    with_id: bool  # sent with an ``id:`` line (a tweet older than one already sent comes without)
    connection: int  # index into the reader's ``connections``
    at: float  # time.time()


@dataclass
class Connection:
    started: float  # time.time() of the request
    status: str  # the HTTP status, or "conn-error"
    last_event_id: int | None  # what the reconnection sent
    ended: float | None = None
    how: str = ""  # "server closed", "read error", "silent", "stopped"
    server: str = ""  # the ``SERVED_BY`` header of the answer, when there is one


class _Reader:
    """The thread, the backoff and the bookkeeping shared by both kinds of reader."""

    kind = ""

    def __init__(self, base: str, token: str, *, name: str, backoff_most: float = BACKOFF_MOST):
        self.base, self.token, self.name, self.backoff_most = base.rstrip("/"), token, name, backoff_most
        self.connections: list[Connection] = []
        self.arrivals: list[Arrival] = []
        self.last_event_at = 0.0  # time.monotonic() of the last event (any kind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{self.kind}-{name}")
        self._lock = threading.Lock()
        self._close_now = None  # ends the blocking read of the current connection
        self.open = False

    def start(self) -> _Reader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._close_now is not None:
            with contextlib.suppress(Exception):
                self._close_now()
        self._thread.join(10)

    def _run(self) -> None:
        pause = BACKOFF_FIRST
        while not self._stop.is_set():
            began = time.monotonic()
            self._connect_once()
            if self._stop.is_set():
                return
            # A connection that held a while starts the backoff afresh; one refused at once doubles it.
            pause = BACKOFF_FIRST if time.monotonic() - began > 5 else min(pause * 2, self.backoff_most)
            self._stop.wait(pause)

    def _connect_once(self) -> None:
        raise NotImplementedError

    def _opened(self, status: str, last_event_id: int | None) -> Connection:
        with self._lock:
            conn = Connection(time.time(), status, last_event_id)
            self.connections.append(conn)
            return conn

    def _ended(self, conn: Connection, how: str) -> None:
        self.open = False
        conn.ended, conn.how = time.time(), ("stopped" if self._stop.is_set() else how)

    def _arrived(self, tweet_id: int, with_id: bool) -> None:
        with self._lock:
            self.arrivals.append(Arrival(tweet_id, with_id, len(self.connections) - 1, time.time()))

    # --- What it saw -------------------------------------------------------------------

    def statuses(self) -> Counter:
        """How its connection attempts were answered."""
        return Counter(c.status for c in self.connections)

    def reconnects(self) -> int:
        return sum(c.status == "200" for c in self.connections) - 1

    def quiet_for(self, seconds: float) -> bool:
        """Connected, and no event for ``seconds``."""
        return self.open and time.monotonic() - self.last_event_at >= seconds


class V1Reader(_Reader):
    """``/v1``'s stream, resumed with ``Last-Event-ID`` after every disconnection."""

    kind = "v1"

    def __init__(self, base: str, token: str, *, name: str, backoff_most: float = BACKOFF_MOST):
        super().__init__(base, token, name=name, backoff_most=backoff_most)
        self.last_event_id: int | None = None
        self.deleted: set[int] = set()
        self.resets = 0

    def _connect_once(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        sent = self.last_event_id
        if sent is not None:
            headers["Last-Event-ID"] = str(sent)
        try:
            response = requests.get(self.base + V1_PATH, headers=headers, stream=True,
                                    timeout=(5, SILENCE_SECONDS))
        except requests.RequestException:
            self._ended(self._opened("conn-error", sent), "refused")
            return
        conn = self._opened(str(response.status_code), sent)
        conn.server = response.headers.get(SERVED_BY, "")
        if response.status_code != 200:
            response.close()
            self._ended(conn, "refused")
            return
        sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
        self._close_now = lambda: (sock and sock.shutdown(socket.SHUT_RDWR), response.close())
        self.open, self.last_event_at = True, time.monotonic()
        how = "server closed"
        try:
            for event, event_id, data in parse_sse(response.iter_content(chunk_size=None)):
                self.last_event_at = time.monotonic()
                if event == "tweet":
                    tweet_id = int(json.loads(data)["tweet_id"])
                    if event_id is not None:
                        self.last_event_id = int(event_id)
                    self._arrived(tweet_id, event_id is not None)
                elif event == "delete":
                    self.deleted.add(int(json.loads(data)["tweet_id"]))
                elif event == "reset":
                    self.resets += 1
        except requests.exceptions.ConnectionError as error:
            how = "silent" if "timed out" in str(error) else "read error"
        except (requests.RequestException, OSError, ValueError, AttributeError):
            how = "read error"
        finally:
            self._close_now = None
            response.close()
            self._ended(conn, how)

    def received(self) -> list[int]:
        return [a.tweet_id for a in self.arrivals]


def parse_sse(chunks) -> list[tuple[str, str | None, str]]:
    """Server-Sent Events from an iterable of byte chunks, as ``EventSource`` parses them: each
    blank-line-terminated block with a ``data`` or ``event`` field is ``(event, id or None, data)``;
    comments (the heartbeat) are skipped. A generator: it yields each event as its block ends."""
    buffer, fields = b"", {}
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode()
            if line.startswith(":"):
                continue
            if line == "":
                if "event" in fields or "data" in fields:
                    yield fields.get("event", "message"), fields.get("id"), fields.get("data", "")
                fields = {}
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value


class MastodonReader(_Reader):
    """Mastodon's WebSocket (``stream=user``): reconnects, never resumes."""

    kind = "ws"

    def _connect_once(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        url = self.base.replace("http", "ws", 1) + f"{MASTODON_PATH}?stream=user&access_token={self.token}"
        try:
            ws = connect(url, open_timeout=5, close_timeout=1, max_size=2**20)
        except InvalidStatus as refused:
            self._ended(self._opened(str(refused.response.status_code), None), "refused")
            return
        except (OSError, TimeoutError, WebSocketException):
            self._ended(self._opened("conn-error", None), "refused")
            return
        conn = self._opened("200", None)
        conn.server = ws.response.headers.get(SERVED_BY, "") if ws.response is not None else ""
        self._close_now = ws.close
        self.open, self.last_event_at = True, time.monotonic()
        how = "server closed"
        try:
            # No deadline on a frame: a quiet timeline sends none for minutes. The server's pings (and the
            # client's own, every 20 s, unanswered within 20 s) are what tell a dead connection.
            while True:
                frame = json.loads(ws.recv())
                self.last_event_at = time.monotonic()
                if frame.get("event") == "update":
                    self._arrived(int(json.loads(frame["payload"])["id"]), True)
        except ConnectionClosed:
            how = "server closed"
        except (OSError, ValueError, KeyError, WebSocketException):
            how = "read error"
        finally:
            self._close_now = None
            with contextlib.suppress(Exception):
                ws.close()
            self._ended(conn, how)

    def duplicates(self) -> list[int]:
        """Tweets received twice within one connection."""
        seen = Counter((a.connection, a.tweet_id) for a in self.arrivals)
        return sorted(tweet for (_, tweet), n in seen.items() if n > 1)


# --- The audit ---------------------------------------------------------------------------------


def timeline_head(base: str, token: str, first: int, *, session: requests.Session | None = None) -> list[int]:
    """The reader's home timeline, newest first, from its first page down to the first tweet older
    than ``first`` (over HTTP, ``next_cursor`` after ``next_cursor``)."""
    session = session or requests.Session()
    seen, cursor = [], None
    while True:
        r = session.get(f"{base.rstrip('/')}/v1/timeline/home", headers={"Authorization": f"Bearer {token}"},
                        params={"limit": 100} | ({"cursor": cursor} if cursor else {}), timeout=30)
        r.raise_for_status()
        body = r.json()
        ids = [int(t["tweet_id"]) for t in body["data"]]
        seen += [t for t in ids if t >= first]
        cursor = body["next_cursor"]
        if cursor is None or (ids and ids[-1] < first):
            return seen


@dataclass
class V1Audit:
    """What one ``/v1`` reader received against its timeline's head (ids >= its first tweet)."""

    expected: int = 0
    received: int = 0
    missing: list[int] = field(default_factory=list)  # in the timeline, never received
    not_replayed: list[dict] = field(default_factory=list)  # the missing ones a resume was not meant to send
    extra: list[int] = field(default_factory=list)  # received, not (or no longer) in the timeline
    duplicates: list[int] = field(default_factory=list)
    out_of_order: int = 0  # tweets that came after a newer one (sent without ``id:``)

    @property
    def gaps(self) -> list[int]:
        """Missing, and not explained by the resume's documented limit."""
        explained = {m["tweet_id"] for m in self.not_replayed}
        return [t for t in self.missing if t not in explained]

    @property
    def ok(self) -> bool:
        return not self.gaps and not self.extra and not self.duplicates


def audit_v1(arrivals: list[Arrival], connections: list[Connection], deleted: set[int],
             head: list[int]) -> V1Audit:
    """Compare a reader's arrivals with ``head`` (its timeline newest first, down to its first tweet).

    A tweet whose ``delete`` event the reader heard is taken out, as a client would.
    The comparison is as sets, plus "no tweet twice": a tweet whose fan-out finished
    after a newer one's arrives after it (counted in ``out_of_order``). A missing tweet
    older than a ``Last-Event-ID`` a reconnection sent is listed in ``not_replayed``
    (a resume replays only what is newer: documented, as ``since`` does) with the
    reconnection's id and time; any other is a gap."""
    if not arrivals:
        return V1Audit()
    first = arrivals[0].tweet_id
    ids = [a.tweet_id for a in arrivals]
    counts = Counter(ids)
    kept = {t for t in ids if t >= first} - deleted
    want = set(head)
    out_of_order, newest = 0, 0
    for t in ids:
        out_of_order += t < newest
        newest = max(newest, t)
    result = V1Audit(expected=len(want), received=len(kept), missing=sorted(want - kept),
                     extra=sorted(kept - want), duplicates=sorted(t for t, n in counts.items() if n > 1),
                     out_of_order=out_of_order)
    opened = [c for c in connections if c.status == "200"]
    for t in result.missing:
        for before, c in zip(opened, opened[1:], strict=False):
            if c.last_event_id is not None and c.last_event_id > t:
                result.not_replayed.append({"tweet_id": t, "last_event_id": c.last_event_id,
                                            "disconnected_at": before.ended, "reconnected_at": c.started})
                break
    return result


# --- A set of readers, as the fault suite and the soak keep them ----------------------------------


ALLOWED_OPENINGS = {"200", "503", "conn-error"}  # 503: the hub is not listening (yet); conn-error: no process


@dataclass
class Audit:
    """The audit of every reader of a ``Readers``, over what happened since a ``mark``."""

    v1: dict[str, V1Audit] = field(default_factory=dict)
    ws_duplicates: dict[str, list[int]] = field(default_factory=dict)
    not_open: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # readers whose timeline could not be read
    openings: Counter = field(default_factory=Counter)  # how connection attempts were answered, since the mark
    reconnects: int = 0  # successful reconnections since the mark
    events: int = 0  # tweet events received since the mark
    deleted_unheard: dict[str, list[int]] = field(default_factory=dict)  # extra, but deleted (no delete replay)

    def problems(self) -> list[str]:
        out = [f"stream reader {name} not connected at the audit" for name in self.not_open]
        out += [f"stream reader {what}" for what in self.unreadable]
        for name, a in self.v1.items():
            if a.gaps or a.extra or a.duplicates:
                out.append(f"stream reader {name}: {len(a.gaps)} missing {a.gaps[:5]}, {len(a.extra)} extra "
                           f"{a.extra[:5]}, {len(a.duplicates)} twice {a.duplicates[:5]} "
                           f"(of {a.expected} in its timeline's head)")
        out += [f"WebSocket reader {name}: received twice on one connection {dups[:5]}"
                for name, dups in self.ws_duplicates.items() if dups]
        unexpected = set(self.openings) - ALLOWED_OPENINGS
        if unexpected:
            out.append("stream connections answered " + ", ".join(f"{k} x{self.openings[k]}" for k in
                                                                  sorted(unexpected)))
        return out

    def not_replayed(self) -> list[dict]:
        return [dict(m, reader=name) for name, a in self.v1.items() for m in a.not_replayed]

    def summary(self) -> str:
        expected = sum(a.expected for a in self.v1.values())
        late = sum(a.out_of_order for a in self.v1.values())
        text = (f"{len(self.v1)} /v1 + {len(self.ws_duplicates)} WebSocket readers; {self.reconnects} reconnections "
                f"(attempts, by answer: {dict(sorted(self.openings.items()))}); {self.events} tweet events; ")
        problems = self.problems()
        text += (f"OK: every /v1 reader = its timeline since its first tweet ({expected} tweets in all), none twice"
                 if not problems else "FAILED: " + "; ".join(problems[:3]))
        if late:
            text += f"; {late} arrived after a newer one (in all)"
        if self.not_replayed():
            text += f"; {len(self.not_replayed())} not replayed (older than the Last-Event-ID sent)"
        if self.deleted_unheard:
            text += f"; {sum(map(len, self.deleted_unheard.values()))} deleted while away (deletes are not replayed)"
        return text


class Readers:
    """Readers of several users, started together, settled and audited together."""

    def __init__(self) -> None:
        self.v1: dict[str, tuple[V1Reader, str]] = {}  # name: (reader, the web base its timeline is read from)
        self.ws: dict[str, MastodonReader] = {}
        self._mark: dict[str, tuple[int, int]] = {}

    def add_v1(self, name: str, stream_base: str, web_base: str, token: str, **kwargs) -> V1Reader:
        reader = V1Reader(stream_base, token, name=name, **kwargs)
        self.v1[name] = (reader, web_base)
        return reader

    def add_ws(self, name: str, stream_base: str, token: str, **kwargs) -> MastodonReader:
        reader = self.ws[name] = MastodonReader(stream_base, token, name=name, **kwargs)
        return reader

    def all(self) -> list[_Reader]:
        return [r for r, _ in self.v1.values()] + list(self.ws.values())

    def start(self, timeout: float = 60) -> None:
        for reader in self.all():
            reader.start()
        self.settle(quiet=0, timeout=timeout)
        self.mark()

    def stop(self) -> None:
        for reader in self.all():
            reader._stop.set()
        for reader in self.all():
            reader.stop()

    def settle(self, *, quiet: float = 2.0, timeout: float = 60) -> list[str]:
        """Wait until every reader is connected and none has had an event for ``quiet`` seconds; the
        names of those still not connected when ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(r.quiet_for(quiet) for r in self.all()):
                return []
            time.sleep(0.2)
        return [r.name for r in self.all() if not r.open]

    def mark(self) -> None:
        """Count connections and events from now on (``audit`` reports what happened since)."""
        self._mark = {r.name: (len(r.connections), len(r.arrivals)) for r in self.all()}

    def audit(self, *, quiet: float = 2.0, timeout: float = 60, deleted: set[int] | None = None,
              session: requests.Session | None = None) -> Audit:
        """Settle, then audit every reader: a ``/v1`` one against its timeline's head read now."""
        result = Audit(not_open=self.settle(quiet=quiet, timeout=timeout))
        session = session or requests.Session()
        for reader in self.all():
            conns, events = self._mark.get(reader.name, (0, 0))
            result.openings.update(c.status for c in reader.connections[conns:])
            result.reconnects += sum(c.status == "200" for c in reader.connections[max(conns, 1):])
            result.events += len(reader.arrivals) - events
        for name, (reader, web_base) in self.v1.items():
            with reader._lock:
                arrivals, connections = list(reader.arrivals), list(reader.connections)
            try:
                head = timeline_head(web_base, reader.token, arrivals[0].tweet_id, session=session) \
                    if arrivals else []
            except requests.RequestException as error:
                result.unreadable.append(f"{name}: its timeline could not be read ({error})")
                continue
            a = result.v1[name] = audit_v1(arrivals, connections, reader.deleted, head)
            gone = [t for t in a.extra if t in (deleted or ())]
            if gone:
                result.deleted_unheard[name] = gone
                a.extra = [t for t in a.extra if t not in gone]
        for name, reader in self.ws.items():
            result.ws_duplicates[name] = reader.duplicates()
        self.mark()
        return result
