"""Seed a benchmark data set fast (PostgreSQL COPY), with a progress bar.

Power-law follow graph: most users follow 20-300 accounts chosen by a Zipf-like
popularity, a tail of authors has thousands to tens of thousands of followers,
fan-out probe authors get exact follower counts (from 2% of the celebrity
threshold to just under it, and one at twice the threshold, whose tweets are
pulled), one more probe author's followers are all active users (the pure
delivery rate), probe readers follow exactly 10, 100, 1,000 and 5,000 accounts,
and a few celebrities sit above the threshold. Tweets are spread over the last
30 days with power-law author activity; a share of users is "active" and gets
a cached timeline (the probe readers always do).

The manifest (the JSON the benchmark reads: the users it needs) is written to
``--manifest`` and kept in the database (table ``bench_dataset``), with the
arguments that made it: ``--reuse`` finds a database seeded with the same
arguments and, instead of seeding again, deletes what a benchmark added since
(tweets newer than the seed) and caches the active timelines again (the bench's
Valkey keeps nothing between runs).
"""
import json
import pickle
import secrets
import time
from pathlib import Path

import numpy as np
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from tqdm import tqdm

from social.models import Follow, User
from timelines import store as timeline_store
from timelines.selectors import timeline_page_for_user
from tweets import objects as tweet_objects
from tweets import snowflake
from tweets.models import Tweet

BENCH_PASSWORD = "bench-pass-phrase"
_CHUNK = 500_000
# Bump when the generator changes what it seeds: a database seeded by another version is not reused.
DATASET_VERSION = 4
FOLLOWEE_PROBES = (10, 100, 1_000, 5_000)
DATASET_TABLE = "bench_dataset"
NOT_REUSABLE = 3  # the exit code when the database holds another data set


def probe_follower_counts(threshold: int, users: int) -> list[int]:
    """The fan-out probes' follower counts: pushed ones from 2% of the threshold to just under it, and one pulled
    at twice the threshold (capped by the users there are: 99,995 of the full profile's 100,000)."""
    counts = [threshold // 50, threshold // 10, threshold // 5, threshold // 2, threshold - 1, 2 * threshold - 1]
    # Followers come from everyone but the author and the probe readers (who follow exactly their count).
    return sorted({min(c, users - 1 - len(FOLLOWEE_PROBES)) for c in counts if c >= 1})


_WARM_CHUNK = 2000

# Keys the snapshot leaves out: a process's Snowflake lease, rate-limit windows, and the flag that every
# cached timeline is marked live (the restored timelines are marked again, in the current period).
_NOT_SNAPSHOT = ("snowflake:", "rl:", "tl-live-indexed:")
# The modules that decide what the cached keys hold: a snapshot taken under other versions of them is not
# restored (the cache is warmed again), or a run would measure entries of an old layout.
_CACHE_MODULES = ("timelines/store", "timelines/selectors.py", "tweets/cache.py", "tweets/objects.py",
                  "social/cache.py", "bench/management/commands/seed_bench.py")


def cache_layout() -> str:
    """A digest of the modules that shape the cache (see ``_CACHE_MODULES``; a package: its Python and Lua files)."""
    import hashlib

    from django.conf import settings

    digest = hashlib.sha256()
    for name in _CACHE_MODULES:
        path = Path(settings.BASE_DIR) / name
        files = sorted(p for p in path.rglob("*") if p.suffix in (".py", ".lua")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.read_bytes() if file.exists() else b"")
    return digest.hexdigest()[:16]


def snapshot_save(path: Path, token: str) -> int:
    """Write every key of the app's Redis database (DUMP, with its TTL) to ``path``, tagged with the data set's
    ``token``; the number of keys."""
    import redis

    from core import redis as core_redis

    client: redis.Redis = core_redis.connection()
    keys = [k for k in client.scan_iter(count=5000) if not k.decode(errors="replace").startswith(_NOT_SNAPSHOT)]
    entries = []
    for start in range(0, len(keys), 5000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 5000]:
            pipe.dump(key)
            pipe.pttl(key)
        replies = pipe.execute()
        entries += [(key, replies[2 * i], replies[2 * i + 1]) for i, key in enumerate(keys[start:start + 5000])]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump({"token": token, "layout": cache_layout(),
                     "entries": [e for e in entries if e[1] is not None]}, f)
    return len(entries)


def snapshot_restore(path: Path, token: str | None) -> int | None:
    """Put back the keys ``snapshot_save`` kept for the data set ``token`` (over any of the same name: the bench's
    Valkey starts empty, and nothing else is touched); None if there is no snapshot of that data set."""
    from core import redis as core_redis

    if not token or not path.exists():
        return None
    with path.open("rb") as f:
        saved = pickle.load(f)  # noqa: S301 - the bench's own file, written by snapshot_save
    if saved.get("token") != token or saved.get("layout") != cache_layout():
        return None
    client = core_redis.connection()
    entries = saved["entries"]
    for start in range(0, len(entries), 5000):
        pipe = client.pipeline(transaction=False)
        for key, value, ttl in entries[start:start + 5000]:
            pipe.restore(key, max(ttl, 0), value, replace=True)
        pipe.execute()
    return len(entries)


def _stored(cursor) -> dict | None:
    cursor.execute("SELECT to_regclass(%s)", [DATASET_TABLE])
    if cursor.fetchone()[0] is None:
        return None
    cursor.execute(f"SELECT manifest FROM {DATASET_TABLE} LIMIT 1")
    row = cursor.fetchone()
    return None if row is None else (json.loads(row[0]) if isinstance(row[0], str) else row[0])


def _follow_row(follower: int, followee: int) -> str:
    return f"{follower}\t{followee}\taccepted\t2024-01-01T00:00:00Z\n"


def _tweet_row(tweet_id: int, author: int, pushed: bool) -> str:
    created = snowflake.datetime_of(tweet_id).isoformat()
    return f"{tweet_id}\t{author}\tbench tweet {tweet_id}\t{created}\t{{}}\t{{}}\t[]\t{'t' if pushed else 'f'}\n"


class Command(BaseCommand):
    help = "Seed users, a power-law follow graph and tweets into an empty database, and cache active timelines."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=100_000)
        parser.add_argument("--tweets", type=int, default=1_000_000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--active", type=float, default=0.2, help="share of users with a cached timeline")
        parser.add_argument("--threshold", type=int, default=50_000, help="the celebrity threshold the bench runs with")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--manifest", type=Path, required=True, help="where to write the JSON manifest")
        parser.add_argument("--reuse", action="store_true",
                            help="if the database holds a data set seeded with these arguments, reset and reuse it")
        parser.add_argument("--cache-snapshot", type=Path,
                            help="where to keep the warmed Redis state (written after seeding, restored on --reuse "
                                 "instead of warming the active timelines again)")

    def handle(self, *args, users, tweets, days, active, threshold, seed, manifest, reuse, cache_snapshot,
               **options):
        key = {"version": DATASET_VERSION, "users": users, "tweets": tweets, "days": days, "active": active,
               "threshold": threshold, "seed": seed}
        if reuse and self._reuse(key, manifest, cache_snapshot):
            return
        if User.objects.exists():
            # Exit code NOT_REUSABLE: the caller (bench.run) empties the database and asks again.
            raise CommandError("The database already has users (not this data set): seed an empty one.",
                               returncode=NOT_REUSABLE)
        if users < 100 or tweets < 1 or not 0 < active <= 1:
            raise CommandError("Need --users >= 100, --tweets >= 1 and 0 < --active <= 1.")
        started = time.monotonic()
        rng = np.random.default_rng(seed)
        ids = np.arange(1, users + 1, dtype=np.int64)
        active_ids = np.sort(rng.choice(ids, size=max(1, int(users * active)), replace=False))
        follower, followee, probes, celebrities, extra = self._graph(rng, users, threshold, active_ids)
        active_ids = np.union1d(active_ids, np.array(list(extra["followee_probes"].values()), dtype=np.int64))
        followers_count = np.bincount(followee, minlength=users + 1)
        following_count = np.bincount(follower, minlength=users + 1)
        author, tweet_id = self._tweets(rng, users, tweets, days)
        pushed = followers_count[author] < threshold
        last_tweet = np.zeros(users + 1, dtype=np.int64)
        np.maximum.at(last_tweet, author, tweet_id)
        has_pulled = np.zeros(users + 1, dtype=bool)
        has_pulled[author[~pushed]] = True

        self._copy_users(ids, followers_count, following_count, last_tweet, has_pulled)
        self._copy(Follow, ["follower_id", "followee_id", "state", "created_at"], len(follower),
                   lambda s: "".join(_follow_row(a, b) for a, b in zip(follower[s].tolist(), followee[s].tolist(),
                                                                        strict=True)))
        tweet_columns = ["id", "author_id", "content", "created_at", "mentions", "hashtags", "media", "pushed"]
        # Seeded tweets were delivered long ago: no pending fan-outs for them (the timelines app's
        # trigger writes one per inserted tweet). Off for this COPY only: in one transaction with it.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {Tweet._meta.db_table} DISABLE TRIGGER USER")
            self._copy(Tweet, tweet_columns, len(author),
                       lambda s: "".join(_tweet_row(t, a, p) for t, a, p in zip(
                           tweet_id[s].tolist(), author[s].tolist(), pushed[s].tolist(), strict=True)))
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the COPY's deferred key checks, run now: ALTER
            cursor.execute(f"ALTER TABLE {Tweet._meta.db_table} ENABLE TRIGGER USER")  # TABLE refuses while pending
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{User._meta.db_table}', 'id'), %s)", [users])
            # As autovacuum leaves a table that has settled: statistics, and the visibility map set, without
            # which the fan-out's index-only scan of the follow index visits the heap for every follower.
            self.stderr.write("vacuuming and analyzing tables ...")
            cursor.execute("VACUUM ANALYZE")
        warm_started = time.monotonic()
        self._warm(active_ids.tolist())
        special = [*probes.values(), *celebrities, *extra["all_active"].values(), *extra["followee_probes"].values()]
        data = {
            "users": users, "tweets": tweets, "follows": int(len(follower)), "threshold": threshold,
            "password": BENCH_PASSWORD, "active": active_ids.tolist(),
            "probes": {str(k): v for k, v in probes.items()}, "celebrities": celebrities,
            "all_active_probes": {str(k): v for k, v in extra["all_active"].items()},
            "followee_probes": {str(k): v for k, v in extra["followee_probes"].items()},
            "followers_count": {str(u): int(followers_count[u]) for u in special},
            "following_count": {str(u): int(following_count[u]) for u in extra["followee_probes"].values()},
            "max_seeded_tweet_id": int(tweet_id.max()),
            "seconds": round(time.monotonic() - started, 1),
            "warm_seconds": round(time.monotonic() - warm_started, 1),
            "key": key, "reused": False, "token": secrets.token_hex(8),
        }
        if cache_snapshot:
            saved = snapshot_save(cache_snapshot, data["token"])
            self.stderr.write(f"kept the warmed cache ({saved:,} keys) in {cache_snapshot}")
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {DATASET_TABLE} (manifest jsonb NOT NULL)")
            cursor.execute(f"DELETE FROM {DATASET_TABLE}")
            cursor.execute(f"INSERT INTO {DATASET_TABLE} (manifest) VALUES (%s)", [json.dumps(data)])
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(data))
        self.stdout.write(f"Seeded {users:,} users, {len(follower):,} follows, {tweets:,} tweets and "
                          f"{len(active_ids):,} cached timelines in {data['seconds']} s; manifest: {manifest}")

    def _reuse(self, key: dict, manifest: Path, cache_snapshot: Path | None) -> bool:
        """Reset a data set seeded with ``key`` to its seeded state and cache its active timelines again; False
        if the database holds no such data set."""
        from timelines.models import PendingFanout

        with connection.cursor() as cursor:
            stored = _stored(cursor)
        if stored is None or stored.get("key") != key:
            if stored is not None:
                self.stderr.write(f"the database holds another data set ({stored.get('key')}): seeding again")
            return False
        started = time.monotonic()
        # What a benchmark run added: its tweets (and their fan-out rows, cascaded), nothing else it writes.
        PendingFanout.objects.all().delete()
        seeded_max = stored["max_seeded_tweet_id"]
        deleted, _ = Tweet.objects.filter(id__gt=seeded_max).delete()
        with connection.cursor() as cursor:  # the authors' last tweet is a seeded one again
            cursor.execute(f"UPDATE {User._meta.db_table} u SET last_tweet_id = COALESCE((SELECT max(t.id) FROM "
                           f"{Tweet._meta.db_table} t WHERE t.author_id = u.id), 0) WHERE last_tweet_id > %s",
                           [seeded_max])
        self.stderr.write(f"reusing the seeded data set (deleted {deleted:,} rows a benchmark added)")
        restored = snapshot_restore(cache_snapshot, stored.get("token")) if cache_snapshot else None
        if restored is None:
            self.stderr.write("no cache snapshot of this data set and this cache layout: warming the active "
                              "timelines again")
            self._warm(stored["active"])
            if cache_snapshot:
                snapshot_save(cache_snapshot, stored["token"])
        else:
            self.stderr.write(f"restored the warmed cache ({restored:,} keys) from {cache_snapshot}")
            timeline_store.index_live()
        data = stored | {"reused": True, "reuse_seconds": round(time.monotonic() - started, 1)}
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(data))
        self.stdout.write(f"Reused the data set seeded in {stored['seconds']} s; reset and warmed in "
                          f"{data['reuse_seconds']} s; manifest: {manifest}")
        return True

    @staticmethod
    def _graph(rng, n: int, threshold: int, active_ids):
        """(follower ids, followee ids, probe authors by follower count, celebrities, and the extra probes:
        ``all_active`` (follower count -> an author followed by active users only) and ``followee_probes``
        (followee count -> a reader following exactly that many accounts))."""
        # Most users follow 20-300 accounts (log-normal around 80).
        following = np.clip(rng.lognormal(np.log(80), 0.7, n), 20, 300).astype(np.int64)
        following = np.minimum(following, n - 1)
        follower = np.repeat(np.arange(1, n + 1, dtype=np.int64), following)
        # Followees by a Zipf-like popularity over a random ranking of the users.
        weights = (np.arange(1, n + 1) + 50.0) ** -0.8
        ranking = rng.permutation(np.arange(1, n + 1, dtype=np.int64))
        followee = ranking[rng.choice(n, size=len(follower), p=weights / weights.sum())]
        # Fan-out probes and celebrities: users from the unpopular end, with exact follower counts.
        targets = probe_follower_counts(threshold, n)
        celeb_targets = [min(int(threshold * f), n - 1) for f in (1.1, 1.4, 1.8) if threshold * f < n]
        all_active = [c for c in (threshold // 5,) if 1 <= c < len(active_ids)]
        readers = [c for c in FOLLOWEE_PROBES if c <= n // 2]
        authors = len(targets) + len(celeb_targets) + len(all_active)
        # From the unpopular end, and not active: a probe author's own timeline is no follower's.
        inactive = ranking[~np.isin(ranking, active_ids)]
        special = inactive[-authors:]
        reader_ids = inactive[-(authors + len(readers)):-authors] if readers else inactive[:0]
        everyone = np.arange(1, n + 1, dtype=np.int64)
        keep = ~np.isin(followee, special) & ~np.isin(follower, reader_ids)
        follower, followee = follower[keep], followee[keep]
        extra_a, extra_b = [follower], [followee]
        # The probe readers follow exactly their count: no probe author picks them as a follower.
        not_readers = everyone[~np.isin(everyone, reader_ids)]
        pools = [not_readers] * (len(targets) + len(celeb_targets)) + [active_ids] * len(all_active)
        for user, count, pool in zip(special.tolist(), targets + celeb_targets + all_active, pools, strict=True):
            others = pool[pool != user]
            extra_a.append(rng.choice(others, size=count, replace=False))
            extra_b.append(np.full(count, user, dtype=np.int64))
        ordinary = everyone[~np.isin(everyone, np.concatenate([special, reader_ids]))]
        for user, count in zip(reader_ids.tolist(), readers, strict=True):
            extra_a.append(np.full(count, user, dtype=np.int64))
            extra_b.append(rng.choice(ordinary, size=count, replace=False))
        follower, followee = np.concatenate(extra_a), np.concatenate(extra_b)
        keep = follower != followee
        pairs = np.unique(follower[keep] * (n + 1) + followee[keep])
        probes = dict(zip(targets, special[: len(targets)].tolist(), strict=True))
        celebrities = special[len(targets):len(targets) + len(celeb_targets)].tolist()
        extra = {"all_active": dict(zip(all_active, special[len(targets) + len(celeb_targets):].tolist(),
                                        strict=True)),
                 "followee_probes": dict(zip(readers, reader_ids.tolist(), strict=True))}
        return pairs // (n + 1), pairs % (n + 1), probes, celebrities, extra

    @staticmethod
    def _tweets(rng, n: int, count: int, days: int):
        """(author ids, Snowflake ids) of ``count`` tweets over the last ``days``, oldest first."""
        activity = rng.lognormal(0, 1.2, n)
        author = rng.choice(np.arange(1, n + 1, dtype=np.int64), size=count, p=activity / activity.sum())
        now_ms = int(time.time() * 1000) - 60_000
        ms = np.sort(rng.integers(now_ms - days * 86_400_000, now_ms, size=count, dtype=np.int64))
        seq = np.arange(count, dtype=np.int64)
        tweet_id = ((ms - snowflake.EPOCH_MS) << snowflake.TIMESTAMP_SHIFT) | (
            ((seq // 4096) % 1024) << snowflake.SEQUENCE_BITS) | (seq % 4096)
        return author, tweet_id

    def _copy_users(self, ids, followers_count, following_count, last_tweet, has_pulled) -> None:
        password = make_password(BENCH_PASSWORD)
        columns = ["id", "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff",
                   "is_active", "date_joined", "display_name", "is_private", "followers_count", "following_count",
                   "last_tweet_id", "has_pulled_tweets", "cache_version"]
        self._copy(User, columns, len(ids), lambda s: "".join(
            f"{u}\t{password}\tf\tb{u}\t\t\t\tf\tt\t2024-01-01T00:00:00Z\tBench user {u}\tf\t"
            f"{followers_count[u]}\t{following_count[u]}\t{last_tweet[u]}\t{'t' if has_pulled[u] else 'f'}\t0\n"
            for u in ids[s].tolist()))

    def _copy(self, model, columns: list[str], total: int, rows) -> None:
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy, \
                tqdm(total=total, desc=f"copy {model._meta.db_table}", unit="row", unit_scale=True) as bar:
            for start in range(0, total, _CHUNK):
                part = slice(start, min(start + _CHUNK, total))
                copy.write(rows(part))
                bar.update(part.stop - part.start)

    @staticmethod
    def _warm(user_ids: list[int]) -> None:
        """The cache as production keeps it: posting caches each tweet for ``TWEET_CACHE_TTL_SECONDS``
        (seeded tweets were never posted), and active users have been reading, so their
        summaries, timelines, graphs and first pages are cached."""
        from django.conf import settings

        from social import cache as author_cache
        from tweets import cache as tweet_cache

        since = snowflake.lowest_id_at(int((time.time() - settings.TWEET_CACHE_TTL_SECONDS) * 1000))
        recent = Tweet.objects.live().filter(id__gte=since).select_related("author")
        batch = {}
        for tweet in tqdm(recent.iterator(chunk_size=_WARM_CHUNK), total=recent.count(),
                          desc="cache tweets posted within the tweet cache's TTL", unit="tweet"):
            batch[tweet.id] = tweet_objects.TweetEntry.of(tweet)
            if len(batch) == _WARM_CHUNK:
                tweet_cache.fill_many(batch)
                batch = {}
        tweet_cache.fill_many(batch)
        for start in range(0, len(user_ids), _WARM_CHUNK):
            author_cache.get_or_fill_many(user_ids[start : start + _WARM_CHUNK])
        # Authors with pulled tweets are known as such, as they are once they have posted one: else the first
        # pulled post of a run (the fan-out phase's) would make every cached follow graph stale at once.
        for author_id in User.objects.filter(has_pulled_tweets=True).values_list("id", flat=True):
            timeline_store.puller_add(author_id=author_id)
        for user_id in tqdm(user_ids, desc="cache active timelines", unit="user"):
            timeline_page_for_user(user_id=user_id, limit=20)
        timeline_store.index_live()  # as the reconciler would within seconds: large fan-outs skip the others
