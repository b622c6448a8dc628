"""Seed a benchmark data set fast (PostgreSQL COPY), with a progress bar.

Power-law follow graph: most users follow 20-300 accounts chosen by a Zipf-like
popularity, a tail of authors has thousands to tens of thousands of followers,
fan-out probe authors get exact follower counts (1k, 10k, just under the
threshold) and a few celebrities sit above it. Tweets are spread over the last
30 days with power-law author activity; a share of users is "active" and gets
a cached timeline. Writes a JSON manifest naming the users the benchmark needs.
"""
import json
import time
from pathlib import Path

import numpy as np
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from social.models import Follow, User
from timelines.selectors import timeline_page_for_user
from tweets import snowflake
from tweets.models import Tweet

BENCH_PASSWORD = "bench-pass-phrase"
_CHUNK = 500_000


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

    def handle(self, *args, users, tweets, days, active, threshold, seed, manifest, **options):
        if User.objects.exists():
            raise CommandError("The database already has users: seed an empty one.")
        if users < 100 or tweets < 1 or not 0 < active <= 1:
            raise CommandError("Need --users >= 100, --tweets >= 1 and 0 < --active <= 1.")
        started = time.monotonic()
        rng = np.random.default_rng(seed)
        ids = np.arange(1, users + 1, dtype=np.int64)
        follower, followee, probes, celebrities = self._graph(rng, users, threshold)
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
        self._copy(Tweet, tweet_columns, len(author),
                   lambda s: "".join(_tweet_row(t, a, p) for t, a, p in zip(
                       tweet_id[s].tolist(), author[s].tolist(), pushed[s].tolist(), strict=True)))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{User._meta.db_table}', 'id'), %s)", [users])
            self.stderr.write("analyzing tables ...")
            cursor.execute("ANALYZE")
        active_ids = np.sort(rng.choice(ids, size=max(1, int(users * active)), replace=False))
        self._warm(active_ids.tolist())
        data = {
            "users": users, "tweets": tweets, "follows": int(len(follower)), "threshold": threshold,
            "password": BENCH_PASSWORD, "active": active_ids.tolist(),
            "probes": {str(k): v for k, v in probes.items()}, "celebrities": celebrities,
            "followers_count": {str(u): int(followers_count[u]) for u in [*probes.values(), *celebrities]},
            "seconds": round(time.monotonic() - started, 1),
        }
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(data))
        self.stdout.write(f"Seeded {users:,} users, {len(follower):,} follows, {tweets:,} tweets and "
                          f"{len(active_ids):,} cached timelines in {data['seconds']} s; manifest: {manifest}")

    @staticmethod
    def _graph(rng, n: int, threshold: int):
        """(follower ids, followee ids, probe authors by follower count, celebrities)."""
        # Most users follow 20-300 accounts (log-normal around 80).
        following = np.clip(rng.lognormal(np.log(80), 0.7, n), 20, 300).astype(np.int64)
        following = np.minimum(following, n - 1)
        follower = np.repeat(np.arange(1, n + 1, dtype=np.int64), following)
        # Followees by a Zipf-like popularity over a random ranking of the users.
        weights = (np.arange(1, n + 1) + 50.0) ** -0.8
        ranking = rng.permutation(np.arange(1, n + 1, dtype=np.int64))
        followee = ranking[rng.choice(n, size=len(follower), p=weights / weights.sum())]
        # Fan-out probes and celebrities: users from the unpopular end, with exact follower counts.
        targets = [c for c in (1_000, 10_000, threshold - 1) if c < n]
        celeb_targets = [min(int(threshold * f), n - 1) for f in (1.1, 1.4, 1.8) if threshold * f < n]
        special = ranking[-(len(targets) + len(celeb_targets)):]
        keep = ~np.isin(followee, special)
        follower, followee = follower[keep], followee[keep]
        extra_a, extra_b = [follower], [followee]
        for user, count in zip(special.tolist(), targets + celeb_targets, strict=True):
            others = np.delete(np.arange(1, n + 1, dtype=np.int64), user - 1)
            extra_a.append(rng.choice(others, size=count, replace=False))
            extra_b.append(np.full(count, user, dtype=np.int64))
        follower, followee = np.concatenate(extra_a), np.concatenate(extra_b)
        keep = follower != followee
        pairs = np.unique(follower[keep] * (n + 1) + followee[keep])
        probes = dict(zip(targets, special[: len(targets)].tolist(), strict=True))
        return pairs // (n + 1), pairs % (n + 1), probes, special[len(targets):].tolist()

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
                   "last_tweet_id", "has_pulled_tweets"]
        self._copy(User, columns, len(ids), lambda s: "".join(
            f"{u}\t{password}\tf\tb{u}\t\t\t\tf\tt\t2024-01-01T00:00:00Z\tBench user {u}\tf\t"
            f"{followers_count[u]}\t{following_count[u]}\t{last_tweet[u]}\t{'t' if has_pulled[u] else 'f'}\n"
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
        """Active users have been reading: their timelines, graphs and first pages are cached."""
        for user_id in tqdm(user_ids, desc="cache active timelines", unit="user"):
            timeline_page_for_user(user_id=user_id, limit=20)
