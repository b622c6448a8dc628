"""The author cache's Prometheus series (served by ``core.metrics``).

The hit ratio is a PromQL division of the two (``docs/operations.md``).
"""
from prometheus_client import Counter

AUTHOR_CACHE_HITS = Counter(
    "timeline_author_cache_hits_total",
    "User ids found in the author cache (page hydration and the read views' authentication).",
)

AUTHOR_CACHE_MISSES = Counter(
    "timeline_author_cache_misses_total",
    "User ids looked up in the author cache and read from PostgreSQL instead.",
)
