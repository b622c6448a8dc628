"""Whether the service sees its clients' addresses or only a proxy's.

Every per-IP limit (logins, registrations, OAuth clients) counts ``client_ip``.
Behind a proxy that ``RATE_LIMIT_TRUSTED_PROXIES`` does not name, every client
has the proxy's address and shares one budget: one guesser locks everybody out
of signing in. Each process keeps the addresses of its last requests (the
probes' and scrapes' aside) and ``/readyz`` reports a warning when they all
came from one address.
"""
import ipaddress
from collections import deque
from dataclasses import dataclass

from .throttling import client_ip

SAMPLE = 200  # requests remembered per process
_UNWATCHED = ("/healthz", "/readyz", "/metrics")


@dataclass(frozen=True, slots=True)
class _Seen:
    address: str
    forwarded: bool  # the request carried X-Forwarded-For


_recent: deque[_Seen] = deque(maxlen=SAMPLE)


def one_address_warning() -> str | None:
    """A warning when this process's last ``SAMPLE`` requests all came from one address, else None."""
    seen = list(_recent)
    if len(seen) < SAMPLE or len({s.address for s in seen}) > 1:
        return None
    address, forwarded = seen[0].address, any(s.forwarded for s in seen)
    if not forwarded and _is_loopback(address):
        return None  # a developer's own requests, no proxy in front
    if forwarded:
        return (f"Every one of the last {SAMPLE} requests seems to come from {address}, and they carry "
                "X-Forwarded-For: behind a proxy, set RATE_LIMIT_TRUSTED_PROXIES to the number of proxies "
                "of yours that append to it, or every client shares one per-IP rate limit.")
    return (f"Every one of the last {SAMPLE} requests seems to come from {address}: if a proxy stands in "
            "front, have it append X-Forwarded-For and set RATE_LIMIT_TRUSTED_PROXIES, or every client "
            "shares one per-IP rate limit.")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def forget() -> None:
    """Start counting afresh (tests; a changed configuration)."""
    _recent.clear()


class ClientAddressWatchMiddleware:
    """Remember each request's client address (as the rate limits count it) for ``one_address_warning``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(_UNWATCHED):
            _recent.append(_Seen(client_ip(request), "HTTP_X_FORWARDED_FOR" in request.META))
        return self.get_response(request)
