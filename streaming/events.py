"""What the stream processes hear, and how it is sent: small messages on sharded pub/sub channels.

Every message concerns one account and goes to the channel of that account
(``channel_for``: its id modulo ``STREAM_CHANNELS``), so what one author does
reaches every stream process in the order it happened: a tweet, then its
deletion; an unfollow of the author, then the author's next tweet. Each stream
process listens to every channel (``channels``). Messages are JSON arrays:

- ``["tweet", tweet_id, author_id, lo, hi]``: the tweet is in the timelines of
  the author's followers with ids in ``(lo, hi]`` (``hi`` null: no bound), and
  the author's own when ``lo`` is 0 (``timelines.signals.tweet_delivered``);
- ``["delete", tweet_id, author_id]``: the tweet was deleted;
- ``["follow", follower_id, followee_id, followed]``: an accepted follow edge
  appeared (``followed`` true) or went;
- ``["account", user_id]``: the user changed (suspended, made private, renamed,
  their sessions ended) or one of their OAuth tokens was deleted (revoked): their
  open streams check their token and account again now.

``SPUBLISH``/``SSUBSCRIBE`` (Redis 7): on one server they behave as plain pub/sub;
on a Redis Cluster each channel lives on the master of its slot, and the
channels' hash tags spread them over the masters. Publishing never raises: a
message Redis did not take is a live event missed, never a failed write (the
reader's timeline has it; a ``/v1`` stream resumes from it).
"""
import logging

import orjson
from django.conf import settings

from core import redis as core_redis

logger = logging.getLogger(__name__)

TWEET = "tweet"
DELETE = "delete"
FOLLOW = "follow"
ACCOUNT = "account"


def channels() -> list[str]:
    """Every channel, in shard order."""
    return [f"{settings.REDIS_KEY_PREFIX}stream:{{{shard}}}" for shard in range(settings.STREAM_CHANNELS)]


def channel_for(account_id: int) -> str:
    return channels()[account_id % settings.STREAM_CHANNELS]


def publish(account_id: int, message: list) -> None:
    """Send ``message`` on ``account_id``'s channel (call after the change has committed)."""
    try:
        core_redis.connection().spublish(channel_for(account_id), orjson.dumps(message))
    except Exception:  # noqa: BLE001 - Redis unreachable or the breaker open: a live event missed, nothing more
        logger.warning("could not publish %s to the streams", message[:2], exc_info=True)


def parse(raw: bytes) -> list | None:
    """A message as ``publish`` sent it, or None for anything else (logged)."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, list) or not message or message[0] not in (TWEET, DELETE, FOLLOW, ACCOUNT):
        logger.warning("ignoring a stream message of unknown shape: %r", raw[:100])
        return None
    return message
