"""The replica scenario ``test_replica.py`` runs in a subprocess, on a primary and a streaming
replica named by ``DATABASE_URL`` and ``DATABASE_REPLICA_URL`` (migrated, otherwise empty)."""
import os
import subprocess
import time

import django


def _replay(pause: bool) -> None:
    from django.db import connections

    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_wal_replay_pause()" if pause else "SELECT pg_wal_replay_resume()")


def _wait_caught_up() -> None:
    from core import db

    deadline = time.monotonic() + 30
    while not db._caught_up():
        assert time.monotonic() < deadline, "the replica never caught up"


def _replica_queries(fn):
    """``fn()``'s result and how many queries it sent to the replica."""
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connections["replica"]) as captured:
        result = fn()
    return result, len(captured.captured_queries)


def _pg_ctl(data_dir: str, *args: str) -> None:
    subprocess.run([os.environ["PG_CTL"], "-D", data_dir, "-w", *args], check=True,
                   user=os.environ.get("PG_USER") or None, capture_output=True, timeout=60)


def lag() -> None:
    from django.conf import settings

    from core import db
    from core.redis import connection as redis_connection
    from social import services as social_services
    from social.models import User
    from timelines import rebuilds, store
    from timelines.selectors import timeline_page_for_user
    from tweets import services as tweet_services

    redis = redis_connection()
    try:
        author = social_services.user_register(username="author", password="a long password 1")
        reader = social_services.user_register(username="reader", password="a long password 2")
        older = [tweet_services.tweet_create(author=author, content=f"older {i}").id for i in range(3)]
        _wait_caught_up()
        db.forget_replica_health()
        assert db.replica_or_primary() == db.REPLICA

        # A lag-tolerant read goes to the replica: with replay paused, it does not see
        # a user created since; a caught-up read falls back to the primary and does.
        _replay(pause=True)
        late = social_services.user_register(username="late", password="a long password 3")
        exists = lambda alias: User.objects.using(alias).filter(id=late.id).exists()  # noqa: E731
        assert db.read(exists) is False, "a lag-tolerant read is served by the (paused) replica"
        assert db.read(exists, caught_up=True) is True, "a caught-up read sees the write (the primary)"

        # Read your writes: the reader follows the author while the replica is paused;
        # the rebuilt timeline (graph and list) comes from the primary and has the tweets.
        page = timeline_page_for_user(user_id=reader.id, limit=20)  # cached, empty
        assert page.tweets == []
        social_services.follow_create(follower=reader, followee_id=author.id)
        redis.delete(store.timeline_key(reader.id))
        page, on_replica = _replica_queries(lambda: timeline_page_for_user(user_id=reader.id, limit=20))
        assert [t.tweet_id for t in page.tweets] == older[::-1]
        print(f"rebuild after a follow, replica paused: {on_replica} replica queries (LSN checks only)")

        # Fan-out after a follow: the replica does not show the new tweet (nor the follow),
        # so the follower scan reads the primary and the new follower is not missed.
        fresh = tweet_services.tweet_create(author=author, content="posted while the replica lags").id
        assert redis.lindex(store.timeline_key(reader.id), 0) == str(fresh).encode(), \
            "the fan-out reached the follower whose follow the replica had not replayed"

        # Caught up again: rebuilds, graphs and follower scans are served by the replica.
        _replay(pause=False)
        _wait_caught_up()
        redis.delete(store.timeline_key(reader.id))
        state = store.read(user_id=reader.id)
        graph, on_replica = _replica_queries(lambda: rebuilds.graph_rebuild(user_id=reader.id, state=state))
        assert author.id in graph.followees and on_replica >= 2
        page, on_replica = _replica_queries(lambda: timeline_page_for_user(user_id=reader.id, limit=20))
        assert [t.tweet_id for t in page.tweets] == [fresh, *older[::-1]]
        assert on_replica >= 2, "the rebuild read the replica"
        newest = tweet_services.tweet_create(author=author, content="fan-out from the replica")
        print(f"replica caught up: the rebuild sent it {on_replica} queries")

        # A replica that lags too long is not used at all.
        _replay(pause=True)
        tweet_services.tweet_create(author=author, content="replayed later")
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 0.5
        time.sleep(1.0)
        db.forget_replica_health()
        assert db.replica_or_primary() == db.PRIMARY, "a lagging replica falls back to the primary"
        settings.DATABASE_REPLICA_MAX_LAG_SECONDS = 60
        _replay(pause=False)
        _wait_caught_up()
        db.forget_replica_health()
        assert db.replica_or_primary() == db.REPLICA

        # A replica that is down: reads go to the primary, and keep working.
        _pg_ctl(os.environ["REPLICA_DATA_DIR"], "-m", "immediate", "stop")
        redis.delete(store.timeline_key(reader.id))
        page = timeline_page_for_user(user_id=reader.id, limit=20)
        assert page.tweets[0].tweet_id > newest.id
        db.forget_replica_health()
        assert db.replica_or_primary() == db.PRIMARY
        print("scenario passed")
    finally:
        keys = list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=1000))
        if keys:
            redis.delete(*keys)


def primary_gone() -> None:
    """The primary crashes: reads go to the replica, in recovery and then promoted; writes fail."""
    from django.conf import settings
    from django.db import OperationalError

    from core import db
    from core.redis import connection as redis_connection
    from social import services as social_services
    from timelines import store
    from timelines.selectors import timeline_page_for_user
    from timelines.store.keys import graph_key
    from tweets import cache as tweet_cache
    from tweets import services as tweet_services

    redis = redis_connection()
    try:
        author = social_services.user_register(username="author", password="a long password 1")
        reader = social_services.user_register(username="reader", password="a long password 2")
        social_services.follow_create(follower=reader, followee_id=author.id)
        tweets = [tweet_services.tweet_create(author=author, content=f"tweet {i}").id for i in range(3)]
        _wait_caught_up()
        _pg_ctl(os.environ["PRIMARY_DATA_DIR"], "-m", "immediate", "stop")

        def cold_page() -> list[int]:
            """The reader's first page with nothing cached: the graph, the list and the tweets from PostgreSQL."""
            redis.delete(store.timeline_key(reader.id), graph_key(reader.id))
            tweet_cache.evict(tweets)
            db.forget_replica_health()
            return [t.tweet_id for t in timeline_page_for_user(user_id=reader.id, limit=20).tweets]

        assert cold_page() == tweets[::-1], "with the primary gone, a cold page is read from the replica"
        try:
            tweet_services.tweet_create(author=author, content="nowhere to write")
            raise AssertionError("a write went somewhere with the primary gone")
        except OperationalError:
            pass
        _pg_ctl(os.environ["REPLICA_DATA_DIR"], "promote")
        assert cold_page() == tweets[::-1], "and from the promoted replica"
        print("scenario passed")
    finally:
        keys = list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=1000))
        if keys:
            redis.delete(*keys)


if __name__ == "__main__":
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    django.setup()
    {"lag": lag, "primary_gone": primary_gone}[sys.argv[1]]()
