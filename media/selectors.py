"""Reads of media records."""
from core.exceptions import NotFound

from .models import Media


def media_owned_upload(*, owner_id: int, media_id: int) -> Media:
    """An upload of ``owner_id``'s that no tweet has taken yet; ``NotFound`` for another's,
    an unknown one, or one already on a tweet (as Mastodon finds media to show or edit)."""
    media = Media.objects.filter(id=media_id, owner_id=owner_id, tweet_id__isnull=True).first()
    if media is None:
        raise NotFound("No such media.")
    return media
