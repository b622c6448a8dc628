"""The one spelling of a username that a login resolves, counts and looks up.

A login names an account by a username typed in any case, with spaces around it
(DRF's fields and Django's forms strip them before the login sees the name) and,
through a form or a JSON body, in any Unicode form (a full-width ``ａｌｉｃｅ`` is
NFKC's ``alice``, as Django's sign-in forms and ``AbstractUser.normalize_username``
normalise it). ``canonical`` maps every spelling that reaches one account to one
string: stripped, NFKC, stripped again, lower case: what the users' unique index
holds (``lower(username)``) and what ``social.models.UserManager.get_by_natural_key``
looks up, exactly. The login limit (``core.throttling``) counts by the same
string, so no other spelling of a name reaches its account past that name's counter.

``canonical`` gives the same string for ``x``, for itself (``canonical(x)``), for
``x`` stripped and for a form's ``NFKC(x.strip())`` (checked over every code point
by ``tests/core/test_rate_limits.py``): the limit reads the name as sent, the
login as its field cleaned it, and both find the same.
"""
import unicodedata


class NotOneUsername(ValueError):
    """The request named the username otherwise than as exactly one string."""


def canonical(name: str) -> str:
    return unicodedata.normalize("NFKC", name.strip()).strip().lower()


def one_username(values: list[object]) -> str | None:
    """The username of a request whose ``username`` field held ``values`` (every value
    given, a form's repeated fields and files included): None when there is none, the
    string when there is exactly one; ``NotOneUsername`` otherwise (a number, a list,
    null, a file, two fields)."""
    if not values:
        return None
    if len(values) > 1 or not isinstance(values[0], str):
        raise NotOneUsername("username must be given once, as a string.")
    return values[0]
