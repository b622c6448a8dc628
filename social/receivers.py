"""What the accounts app does when a user's sessions end (``signals.sessions_ended``): the
``/v1`` refresh tokens are revoked in the same transaction, and the author cache, which
holds the token version a reader's JWT is checked against, is rewritten once it commits.
Connected in ``apps.SocialConfig.ready``."""
from . import services, tokens
from .models import User


def sessions_ended_revoke_refresh_tokens(sender, user_id: int, **kwargs) -> None:
    tokens.refresh_tokens_revoke_all(user_id=user_id)
    services.author_cache_refresh_after_commit(User(id=user_id))
