"""Mastodon's OAuth scopes: the top-level ones and the granular ones they cover."""

TOP = ("read", "write", "follow", "push", "profile")
# Granular scopes used by the endpoints served here (Mastodon has more; a token
# may ask for these or for the top-level scope that covers them).
GRANULAR = ("read:accounts", "read:follows", "read:statuses",
            "write:accounts", "write:follows", "write:media", "write:statuses")
ALL = TOP + GRANULAR
# Mastodon's legacy ``follow`` scope covers reading and changing follows.
_FOLLOW = {"read:follows", "write:follows"}


def covers(granted: set[str] | frozenset[str], required: str) -> bool:
    """Whether a token granted ``granted`` may do what needs ``required``."""
    return (required in granted or required.split(":")[0] in granted
            or (required in _FOLLOW and "follow" in granted))


def expand(registered: set[str]) -> set[str]:
    """Every scope a token of an app that registered ``registered`` may ask for."""
    return {scope for scope in ALL if covers(registered, scope)}
