"""The stream process: a plain ASGI application (uvicorn, the Procfile's ``stream`` line).

Routes:

- ``GET /api/v1/streaming/health`` → ``OK`` (Mastodon's), ``GET /healthz`` likewise;
- ``GET /api/v1/streaming/user``: Mastodon's home stream over Server-Sent Events
  (``update`` with a Status, ``delete`` with its id, a ``:thump`` heartbeat);
- WebSocket ``/api/v1/streaming`` (``stream=user`` in the query, or
  ``{"type": "subscribe", "stream": "user"}`` messages): the same events framed
  as Mastodon frames them;
- ``GET /v1/timeline/home/stream``: ``/v1``'s, over Server-Sent Events, resumable
  with ``Last-Event-ID`` (SPEC §5, ``docs/streaming.md``).

The token comes from the ``Authorization`` header, the ``access_token`` query
parameter (a browser's ``EventSource`` and ``WebSocket`` cannot set headers) or,
for a WebSocket, ``Sec-WebSocket-Protocol``. Each connection is one coroutine
writing its ``hub.Stream``'s events and one watching the client; everything
else is the ``Hub``'s, one per process.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
from urllib.parse import parse_qs

import orjson
from django.conf import settings
from django.core.exceptions import DisallowedHost
from prometheus_client import multiprocess

from . import readers
from .hub import Event, Hub, Stream

logger = logging.getLogger(__name__)

HEALTH = ("/api/v1/streaming/health", "/healthz")
MASTODON_SSE = "/api/v1/streaming/user"
MASTODON_WS = "/api/v1/streaming"
V1_SSE = "/v1/timeline/home/stream"
USER_STREAM = "user"

hub: Hub | None = None


async def application(scope, receive, send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
    elif kind == "http":
        await _http(scope, receive, send)
    elif kind == "websocket":
        await _websocket(scope, receive, send)


async def _lifespan(receive, send) -> None:
    global hub
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            hub = Hub()
            await hub.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if hub is not None:
                await hub.stop()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # its live gauge stops counting (its counters stay)
                multiprocess.mark_process_dead(os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


def _path(scope) -> str:
    path = scope["path"]
    return path.rstrip("/") or "/"


def _query(scope) -> dict[str, str]:
    try:
        parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return {}
    return {name: values[-1] for name, values in parsed.items()}


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _token(scope, query: dict[str, str]) -> str | None:
    header = _header(scope, b"authorization")
    if header:
        parts = header.split()
        return parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else header
    return query.get("access_token") or None


async def _answer(send, status: int, body: bytes, *, content_type: bytes = b"application/json",
                  headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"access-control-allow-origin", b"*"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def _error_body(message: str, *, mastodon: bool) -> bytes:
    return orjson.dumps({"error": message} if mastodon else {"detail": message})


UNAVAILABLE = "The stream is not available right now, try again shortly."


async def _http(scope, receive, send) -> None:
    path = _path(scope)
    if path in HEALTH:
        await _answer(send, 200, b"OK", content_type=b"text/plain; charset=utf-8")
        return
    if path not in (MASTODON_SSE, V1_SSE):
        await _answer(send, 404, _error_body("Not found", mastodon=path.startswith("/api/")))
        return
    mastodon = path == MASTODON_SSE
    if scope["method"] not in ("GET", "HEAD"):
        await _answer(send, 405, _error_body("Method not allowed", mastodon=mastodon), headers=[(b"allow", b"GET")])
        return
    opened = await _open(scope, mastodon=mastodon)
    if isinstance(opened, tuple):
        status, message = opened
        headers = [(b"retry-after", b"1")] if status == 503 else []
        await _answer(send, status, _error_body(message, mastodon=mastodon), headers=headers)
        return
    stream = opened
    headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
               (b"x-accel-buffering", b"no"), (b"access-control-allow-origin", b"*")]
    if scope["method"] == "HEAD":  # what a GET would answer, without the stream
        assert hub is not None
        hub.leave(stream)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    watcher = asyncio.get_running_loop().create_task(_watch_http(receive, stream))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b":)\n\n", "more_body": True})
        skip: set[int] = set()
        if not mastodon and (after := _last_event_id(scope)) is not None:
            stream.last_id = after
            skip = await _resume(stream, send, after)
        frame = _mastodon_sse if mastodon else functools.partial(_v1_sse, skip=skip)
        finished = await _pump(stream, send, frame, heartbeat=b":thump\n\n" if mastodon else b":\n\n")
        if finished and stream.closed != "client":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        assert hub is not None
        hub.leave(stream)


async def _open(scope, *, mastodon: bool, token: str | None = None, on: bool = True,
                websocket: bool = False) -> Stream | tuple[int, str]:
    """Authenticate the opening request and join the hub: the stream, or (status, why not)."""
    if hub is None or not hub.listening.is_set():
        return 503, UNAVAILABLE
    query = _query(scope)
    try:
        request = readers.request_of(scope, token or _token(scope, query))
        base = readers.base_of(request) if mastodon else ""
        credential = await hub.run(functools.partial(readers.authenticate, request, mastodon=mastodon))
    except readers.Refused as refused:
        return refused.status, refused.message
    except DisallowedHost:
        return 400, "Invalid host"
    except Exception:  # noqa: BLE001 - PostgreSQL or Redis out: try again shortly
        logger.warning("could not authenticate a stream", exc_info=True)
        return 503, UNAVAILABLE
    stream = Stream(credential, mastodon=mastodon, base=base, websocket=websocket)
    stream.on = on
    try:
        await hub.join(stream)
    except Exception:  # noqa: BLE001 - its graph could not be read
        logger.warning("could not open a stream for user %s", credential.user_id, exc_info=True)
        return 503, UNAVAILABLE
    return stream


def _last_event_id(scope) -> int | None:
    raw = _header(scope, b"last-event-id") or _query(scope).get("last_event_id")
    if raw is None or not raw.strip().isdigit():
        return None
    value = int(raw.strip())
    return value if 0 < value < 1 << 63 else None


async def _resume(stream: Stream, send, after: int) -> set[int]:
    """Send what entered the timeline after ``after``, oldest first; the ids sent (live
    events that arrived meanwhile carry some of them: they are not sent twice)."""
    assert hub is not None
    try:
        backlog, more = await hub.run(readers.resume, stream.user_id, after, settings.STREAM_RESUME_MAX)
    except Exception:  # noqa: BLE001 - the timeline could not be read: the client tries again from the same id
        logger.warning("could not resume the stream of user %s", stream.user_id, exc_info=True)
        stream.close("unavailable")
        return set()
    for rendered in backlog:
        if not await _write(stream, send, _v1_update(rendered, with_id=rendered.tweet_id > stream.last_id)):
            break
        stream.last_id = max(stream.last_id, rendered.tweet_id)
    if more:
        await _write(stream, send, _RESET)
    return {rendered.tweet_id for rendered in backlog}


_RESET = (b'event: reset\ndata: {"reason": "More tweets entered the timeline since Last-Event-ID than a stream '
          b'replays: read the timeline again."}\n\n')


async def _watch_http(receive, stream: Stream) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.close("client")
            return


async def _pump(stream: Stream, send, frame, *, heartbeat: bytes | None, websocket: bool = False) -> bool:
    """Write the stream's events as they come, until it closes: True, or False when it was
    closed in the middle of a write the client never took (the connection is to be dropped)."""
    while True:
        await stream.wake.wait()
        stream.wake.clear()
        if stream.closed:
            return True
        if stream.beat:
            stream.beat = False
            if heartbeat is not None and not await _write(stream, send, heartbeat):
                return False
        while stream.buffer and not stream.closed:
            data = frame(stream, stream.buffer.popleft())
            if data is not None and not await _write(stream, send, data, websocket=websocket):
                return False


async def _write(stream: Stream, send, data: bytes | str, *, websocket: bool = False) -> bool:
    """Send ``data`` to the client: True, or False if the stream was closed while the client
    was not taking it (``Stream.close`` cancels a write stuck that way)."""
    stream.sending = True
    try:
        if websocket:
            await send({"type": "websocket.send", "text": data})
        else:
            await send({"type": "http.response.body", "body": data, "more_body": True})
    except asyncio.CancelledError:
        if stream.closed in (None, "client"):
            raise  # not ours: the server is stopping the connection
        return False
    finally:
        stream.sending = False
    return True


def _v1_update(rendered: readers.Rendered, *, with_id: bool) -> bytes:
    id_line = b"id: %d\n" % rendered.tweet_id if with_id else b""
    return b"event: tweet\n" + id_line + b"data: " + rendered.v1 + b"\n\n"


def _v1_sse(stream: Stream, event: Event, *, skip: set[int]) -> bytes | None:
    if event.kind == "delete":
        return event.frame(("v1",), lambda: b'event: delete\ndata: {"tweet_id": "%d"}\n\n' % event.tweet_id)
    rendered = event.rendered
    if rendered is None or event.tweet_id in skip:
        return None
    # A tweet older than one already sent (its fan-out finished later) is sent without
    # an id, so Last-Event-ID stays the newest: resuming from it skips nothing sent.
    with_id = event.tweet_id > stream.last_id
    stream.last_id = max(stream.last_id, event.tweet_id)
    return event.frame(("v1", with_id), lambda: _v1_update(rendered, with_id=with_id))


def _mastodon_sse(stream: Stream, event: Event) -> bytes | None:
    if event.kind == "delete":
        return event.frame(("sse",), lambda: b"event: delete\ndata: %d\n\n" % event.tweet_id)
    status = event.rendered.statuses.get(stream.base) if event.rendered is not None else None
    if status is None:
        return None
    return event.frame(("sse", stream.base), lambda: b"event: update\ndata: " + status + b"\n\n")


def _mastodon_frame(stream: Stream, event: Event) -> str | None:
    if event.kind == "error":
        return event.rendered.v1.decode() if event.rendered is not None else None
    if event.kind == "delete":
        return event.frame(("ws",), lambda: _ws_text("delete", str(event.tweet_id)))
    status = event.rendered.statuses.get(stream.base) if event.rendered is not None else None
    if status is None:
        return None
    return event.frame(("ws", stream.base), lambda: _ws_text("update", status.decode()))


def _ws_text(kind: str, payload: str) -> str:
    return orjson.dumps({"stream": [USER_STREAM], "event": kind, "payload": payload}).decode()


# --- WebSocket -----------------------------------------------------------------------------------


async def _websocket(scope, receive, send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if _path(scope) != MASTODON_WS:
        await _deny(scope, send, 404, "Not found")
        return
    query = _query(scope)
    token, subprotocol = _token(scope, query), None
    offered = _header(scope, b"sec-websocket-protocol")
    if token is None and offered:
        token = subprotocol = offered.split(",")[0].strip()
    wanted = query.get("stream")
    opened = await _open(scope, mastodon=True, token=token, on=wanted == USER_STREAM, websocket=True)
    if isinstance(opened, tuple):
        await _deny(scope, send, *opened)
        return
    stream = opened
    try:
        await send({"type": "websocket.accept", "subprotocol": subprotocol})
        if wanted not in (None, USER_STREAM):
            stream.put(_error_event("Unknown stream type", 400), unsubscribed_too=True)
        reader = asyncio.get_running_loop().create_task(_watch_websocket(receive, stream))
        try:
            finished = await _pump(stream, send, _mastodon_frame, heartbeat=None, websocket=True)
        finally:
            reader.cancel()
        if finished and stream.closed not in ("client", None):
            code = 1012 if stream.closed in ("redis", "shutdown") else 1008
            await send({"type": "websocket.close", "code": code})
    finally:
        assert hub is not None
        hub.leave(stream)


async def _deny(scope, send, status: int, message: str) -> None:
    """Refuse a WebSocket before it opens: an HTTP answer where the server can send one."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body = _error_body(message, mastodon=True)
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 4000 + status})


def _error_event(message: str, status: int) -> Event:
    body = orjson.dumps({"error": message, "status": status})
    return Event("error", 0, readers.Rendered(tweet_id=0, v1=body, statuses={}))


async def _watch_websocket(receive, stream: Stream) -> None:
    """Read the client's messages: subscribe or unsubscribe ``user``; anything else is answered
    with Mastodon's error frame. A disconnect closes the stream."""
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            stream.close("client")
            return
        try:
            request = orjson.loads(message.get("text") or message.get("bytes") or b"")
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict) or request.get("type") not in ("subscribe", "unsubscribe"):
            stream.put(_error_event("Unknown message type", 400), unsubscribed_too=True)
        elif request.get("stream") != USER_STREAM:
            stream.put(_error_event("Unknown stream type", 400), unsubscribed_too=True)
        else:
            stream.on = request["type"] == "subscribe"
