"""The tweet cache's Prometheus series (served by ``core.metrics``).

The hit ratio is a PromQL division of the two (``docs/operations.md``).
"""
from prometheus_client import Counter

TWEET_CACHE_HITS = Counter(
    "timeline_tweet_cache_hits_total",
    "Tweet ids found in the tweet cache (tombstones of deleted tweets included).",
)

TWEET_CACHE_MISSES = Counter(
    "timeline_tweet_cache_misses_total",
    "Tweet ids looked up in the tweet cache and read from PostgreSQL instead.",
)
