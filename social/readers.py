"""``ReaderUser``: a user known by id alone, already checked to exist and be active.

What an authentication that reads no user row (``authentication.CachedUserJWTAuthentication``,
the Mastodon API's cached token lookup) puts on ``request.user``; services that need
only the acting user's id (``tweets.services.tweet_post``) take it as they take a ``User``.
"""


class ReaderUser:
    """The authenticated user of a view that needs only their id: known to exist and be active."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, user_id: int):
        self.id = self.pk = user_id

    def __repr__(self) -> str:
        return f"ReaderUser({self.id})"
