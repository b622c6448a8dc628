"""The hub's decisions, driven directly (no pub/sub connection): who hears a message, in
what order, once; how follow changes made while a reader's graph loads are kept; a slow
stream's overflow. The graph and the tweets are real rows, read by the hub's own threads."""
import asyncio
import contextlib

import pytest
from django.db import connection

from social import services as social_services
from streaming import events, readers
from streaming.hub import Hub, Stream
from tweets import services as tweet_services

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def end_thread_sessions():
    """The hub's threads keep their database sessions (as a stream process does); a thread's
    Django connection is not closed when the thread ends: end them, or the test database stays in use."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def credential(user) -> readers.Credential:
    return readers.Credential(user_id=user.id, kind=readers.JWT, token=f"t{user.id}", claims={})


async def settled(hub: Hub) -> None:
    """Wait until every queued event has been handed to its streams."""
    for _ in range(200):
        if hub.outbox.empty() and not hub.delivering:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the hub did not deliver its events")


@contextlib.asynccontextmanager
async def running_hub():
    """A hub handing out its events (its listener and timers not started: messages are given by hand)."""
    hub = Hub()
    deliver = asyncio.get_running_loop().create_task(hub._deliver())
    try:
        yield hub
    finally:
        deliver.cancel()
        hub.pool.shutdown(wait=True)


def delivered(stream: Stream) -> list[tuple[str, int]]:
    out = [(event.kind, event.tweet_id) for event in stream.buffer]
    stream.buffer.clear()
    return out


def test_a_tweet_reaches_the_streams_of_its_range_once_in_arrival_order(make_user):
    low, high, author, stranger = (make_user(username=n) for n in ("low", "high", "author", "stranger"))
    assert low.id < high.id
    for reader in (low, high):
        social_services.follow_create(follower=reader, followee_id=author.id)
    first = tweet_services.tweet_create(author=author, content="one").id
    second = tweet_services.tweet_create(author=author, content="two").id
    by_stranger = tweet_services.tweet_create(author=stranger, content="unseen").id

    async def scenario():
        async with running_hub() as hub:
            streams = {}
            for user in (low, high, author):
                streams[user.username] = Stream(credential(user), mastodon=False, base="")
                await hub.join(streams[user.username])
            # A fan-out in two batches: (0, low] then (low, None]; the author's own with the first.
            hub.on_message([events.TWEET, second, author.id, 0, low.id])
            hub.on_message([events.TWEET, first, author.id, 0, None])
            hub.on_message([events.TWEET, second, author.id, low.id, None])
            hub.on_message([events.TWEET, second, author.id, low.id, None])  # a retried batch
            hub.on_message([events.TWEET, by_stranger, stranger.id, 0, None])
            hub.on_message([events.DELETE, first, author.id])
            await settled(hub)
            assert delivered(streams["low"]) == [("update", second), ("update", first), ("delete", first)]
            assert delivered(streams["high"]) == [("update", first), ("update", second), ("delete", first)]
            assert delivered(streams["author"]) == [("update", second), ("update", first), ("delete", first)]
            for stream in streams.values():
                hub.leave(stream)
            assert hub.audience == {} and hub.followees == {} and hub.streams == {}

    asyncio.run(scenario())


def test_follow_changes_apply_at_once_also_while_the_graph_loads(make_user):
    reader, old, new = (make_user(username=n) for n in ("reader", "old", "new"))
    social_services.follow_create(follower=reader, followee_id=old.id)
    by_old = tweet_services.tweet_create(author=old, content="old").id
    by_new = tweet_services.tweet_create(author=new, content="new").id

    async def scenario():
        async with running_hub() as hub:
            stream = Stream(credential(reader), mastodon=False, base="")
            joining = asyncio.get_running_loop().create_task(hub.join(stream))
            await asyncio.sleep(0)  # the graph is being read in a thread now
            assert reader.id in hub.loading
            hub.on_message([events.FOLLOW, reader.id, new.id, True])
            hub.on_message([events.FOLLOW, reader.id, old.id, False])
            await joining
            assert list(hub.followees[reader.id]) == [new.id]
            hub.on_message([events.TWEET, by_old, old.id, 0, None])
            hub.on_message([events.TWEET, by_new, new.id, 0, None])
            await settled(hub)
            assert delivered(stream) == [("update", by_new)]

    asyncio.run(scenario())


def test_a_stream_that_falls_behind_is_closed_and_holds_no_one_up(make_user, settings):
    settings.STREAM_BUFFER_EVENTS = 3
    reader, other, author = (make_user(username=n) for n in ("reader", "other", "author"))
    for user in (reader, other):
        social_services.follow_create(follower=user, followee_id=author.id)
    tweets = [tweet_services.tweet_create(author=author, content=f"t{n}").id for n in range(5)]

    async def scenario():
        async with running_hub() as hub:
            slow, fast = Stream(credential(reader), mastodon=False, base=""), Stream(credential(other), mastodon=False,
                                                                                      base="")
            await hub.join(slow)
            await hub.join(fast)
            for tweet_id in tweets:
                hub.on_message([events.TWEET, tweet_id, author.id, 0, None])
                await settled(hub)
                delivered(fast)  # the fast one reads as it goes; the slow one never does
            assert slow.closed == "slow" and not slow.buffer
            assert fast.closed is None

    asyncio.run(scenario())
