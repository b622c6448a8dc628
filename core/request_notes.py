"""What one request carries from layer to layer: its ``RequestNotes``.

The authentication, the throttle, the view and the headers middleware of one
request meet here instead of calling each other or leaving private attributes
on the request. The authentication of a read makes the request's first Redis
round trip, with the throttle's counter and the reads the view declares
(``ReadsFirst``); the replies are noted here, the throttle notes its decision
here, and the view and ``core.throttling.RateLimitHeadersMiddleware`` read them.
``notes_of(request)`` answers the notes of a Django ``HttpRequest`` or of the
DRF ``Request`` around it (the same object for both), made on first use.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from django.http import HttpRequest
from rest_framework.request import Request

from .rates import Decision

if TYPE_CHECKING:
    from .redis import Reply, RoundTrip

_ATTRIBUTE = "request_notes"


class FirstReads(ABC):
    """A view's first Redis reads, asked for in the round trip that authenticates its
    request; the view then finds its instance in ``notes_of(request).first_reads``."""

    @abstractmethod
    def queue(self, round_trip: RoundTrip, *, request: Request, user_id: int) -> None:
        """Add the reads to ``round_trip`` (the authenticated reader is ``user_id``),
        keeping their replies on ``self``; invalid input is left for the view to refuse."""


class ReadsFirst:
    """A view whose first Redis reads go in its request's first round trip: it names
    the ``FirstReads`` it declares, which an authentication that makes such a trip
    (``social.authentication.reader_first_round_trip``: ``/v1``'s reads, and the
    Mastodon API's ``MastodonReaderAuthentication``) queues there."""

    first_reads: ClassVar[type[FirstReads]]


@dataclass(frozen=True)
class CountedAhead:
    """A rate-limit counter asked for in the first round trip: the scope counted, and
    the reply whose value is that count's ``Decision`` (None if the trip failed)."""

    scope: str
    reply: Reply[Decision | None]


@dataclass
class RequestNotes:
    counted_ahead: CountedAhead | None = None  # the throttle's counter, from the first round trip
    decision: Decision | None = None  # the throttle's verdict on this request, for the headers
    refused_scope: str | None = None  # the scope whose limit refused it, if one did (for the metric)
    first_reads: FirstReads | None = None  # the view's declared first reads, queued with it


def notes_of(request: HttpRequest | Request) -> RequestNotes:
    """The request's notes (a DRF ``Request`` shares its ``HttpRequest``'s), made on first use."""
    http_request = request._request if isinstance(request, Request) else request
    notes = getattr(http_request, _ATTRIBUTE, None)
    if notes is None:
        notes = RequestNotes()
        setattr(http_request, _ATTRIBUTE, notes)
    return notes
