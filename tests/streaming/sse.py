"""A small Server-Sent Events reader for the tests: a thread reading a stream with
``requests``, parsing its events (``event``, ``id``, ``data``; comments apart) as a
browser's ``EventSource`` does, and keeping the ``Last-Event-ID`` it would resend."""
import contextlib
import socket
import threading
import time
from dataclasses import dataclass

import requests
import urllib3

from tests.helpers import wait_for


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None


class SseReader:
    def __init__(self, url: str, token: str, *, last_event_id: str | None = None, params: dict | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, headers=headers, params=params, stream=True, timeout=(5, 60))
        self.status = self.response.status_code
        connection = getattr(self.response.raw, "_connection", None)
        self.socket = getattr(connection, "sock", None)  # to end a read blocked in another thread
        self.events: list[SseEvent] = []
        self.comments: list[str] = []
        self.last_event_id = last_event_id
        self.ended = threading.Event()
        if self.status == 200:
            threading.Thread(target=self._read, daemon=True).start()
            wait_for(lambda: self.comments, 10, what="the stream's opening comment")
        else:
            self.ended.set()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        pending = b""
        try:
            while chunk := self.response.raw.read1(65536):  # what has arrived, without waiting for more
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    fields = self._line(raw.decode(), fields)
        except (requests.RequestException, AttributeError, ValueError, OSError, urllib3.exceptions.HTTPError):
            pass
        finally:
            self.ended.set()

    def _line(self, line: str, fields: dict[str, str]) -> dict[str, str]:
        if line.startswith(":"):
            self.comments.append(line)
        elif line == "":
            if "event" in fields or "data" in fields:
                if "id" in fields:
                    self.last_event_id = fields["id"]
                self.events.append(SseEvent(fields.get("event", "message"), fields.get("data", ""), fields.get("id")))
            return {}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        return fields

    def of(self, kind: str) -> list[SseEvent]:
        return [event for event in self.events if event.event == kind]

    def wait(self, predicate, timeout: float = 15.0, what: str = "the events") -> None:
        wait_for(lambda: predicate(self), timeout, what=what,
                 details=lambda: f"{len(self.events)} events: {[e.event for e in self.events[-5:]]}, "
                                 f"ended={self.ended.is_set()}")

    def close(self) -> None:
        if self.socket is not None:
            with contextlib.suppress(OSError):
                self.socket.shutdown(socket.SHUT_RDWR)
        self.response.close()
        assert self.ended.wait(5), "the reader did not stop"

    def quiet_for(self, seconds: float) -> list[SseEvent]:
        """The events that arrive in the next ``seconds``."""
        before = len(self.events)
        time.sleep(seconds)
        return self.events[before:]
