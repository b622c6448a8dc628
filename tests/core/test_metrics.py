"""``GET /metrics``: Prometheus text whose series move with what the service does, and the request log line.

In one process (no ``PROMETHEUS_MULTIPROC_DIR``) the series live in the default
registry, so each test compares a scrape before with a scrape after. The
multi-process stack is tested in ``tests/stack/test_embedded_stack.py``.
"""
import logging
import socket
import time
import uuid

import pytest
from django.test import override_settings
from kombu import Connection, Queue
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from config.celery_app import app
from tests.helpers import hold_timeline_tasks, ids, post, scroll, tool_missing, wait_for
from timelines import services, store
from tweets import cache as tweet_cache

pytestmark = pytest.mark.django_db(transaction=True)

TIMELINE_ROUTE = "v1/timeline/home"


class Scrape:
    """One answer of ``GET /metrics``, parsed by prometheus_client's own parser."""

    def __init__(self, client):
        response = client.get("/metrics")
        assert response.status_code == 200, response.content
        assert response["Content-Type"].startswith("text/plain")
        self.families = {f.name: f for f in text_string_to_metric_families(response.content.decode())}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
        return sum(s.value for s in self.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def moved(before: Scrape, after: Scrape, name: str, **labels) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def test_metrics_is_prometheus_text_and_needs_no_token(anon):
    scrape = Scrape(anon)
    for family in ("timeline_http_request_duration_seconds", "timeline_fanout_lag_seconds",
                   "timeline_fanout_batch_size", "timeline_fanout_deliveries", "timeline_fanout_reconciler_restarts",
                   "timeline_rebuilds", "timeline_pages", "timeline_postgres_pages", "timeline_tweet_cache_hits",
                   "timeline_tweet_cache_misses", "timeline_author_cache_hits", "timeline_author_cache_misses",
                   "timeline_rate_limit_refusals", "timeline_celery_broker_up", "timeline_celery_queue_length"):
        assert family in scrape.families, family


def test_request_latency_is_labelled_by_route_never_by_path(make_user, api, anon):
    reader, a, b = make_user(), make_user(), make_user()
    before = Scrape(anon)
    for user in (a, b):
        assert api(reader).get(f"/v1/users/{user.id}").status_code == 200
    assert anon.get(f"/v1/no/such/{a.id}").status_code == 404
    after = Scrape(anon)
    count = "timeline_http_request_duration_seconds_count"
    assert moved(before, after, count, route="v1/users/<id:user_id>", method="GET", status="200") == 2
    assert moved(before, after, count, route="unmatched", method="GET", status="404") == 1
    routes = {s.labels["route"] for s in after.samples if s.name == count}
    assert not any(f"/{a.id}" in r or f"/{b.id}" in r for r in routes), "a raw path as a route"
    assert moved(before, after, "timeline_http_request_duration_seconds_bucket",
                 route="v1/users/<id:user_id>", le="+Inf") == 2


def test_a_post_its_fan_out_and_reads_move_their_series(make_user, api, anon):
    author, follower = make_user(), make_user()
    api(follower).post(f"/v1/users/{author.id}/follow")
    before = Scrape(anon)
    assert ids(api(follower)) == []  # no cached timeline yet: rebuilt from PostgreSQL
    tweet_id = post(api(author))  # eager tasks: the fan-out runs at commit
    after_post = Scrape(anon)
    assert moved(before, after_post, "timeline_rebuilds_total", kind="timeline") == 1
    assert moved(before, after_post, "timeline_pages_total") == 1
    assert moved(before, after_post, "timeline_fanout_lag_seconds_count", mode="push") == 1
    assert moved(before, after_post, "timeline_fanout_batch_size_count") == 1
    assert moved(before, after_post, "timeline_fanout_batch_size_sum") == 2  # the follower and the author
    assert moved(before, after_post, "timeline_fanout_deliveries_total") == 1  # only the follower's is cached
    assert moved(before, after_post, "timeline_http_request_duration_seconds_count",
                 route="v1/tweets", method="POST", status="201") == 1

    assert ids(api(follower)) == [tweet_id]  # posting warmed the tweet's cache entry
    after_hit = Scrape(anon)
    assert moved(after_post, after_hit, "timeline_tweet_cache_hits_total") == 1
    assert moved(after_post, after_hit, "timeline_tweet_cache_misses_total") == 0
    assert moved(after_post, after_hit, "timeline_rebuilds_total", kind="timeline") == 0
    assert moved(after_post, after_hit, "timeline_author_cache_hits_total") >= 1

    tweet_cache.evict([int(tweet_id)])
    assert ids(api(follower)) == [tweet_id]
    after_miss = Scrape(anon)
    assert moved(after_hit, after_miss, "timeline_tweet_cache_misses_total") == 1
    assert moved(after_hit, after_miss, "timeline_tweet_cache_hits_total") == 0


def test_author_cache_misses_are_counted(make_user, api, anon, redis, settings):
    reader = make_user()
    redis.delete(f"{settings.REDIS_KEY_PREFIX}u2:{reader.id}")
    before = Scrape(anon)
    ids(api(reader))  # the reader's authentication reads the author cache
    after = Scrape(anon)
    assert moved(before, after, "timeline_author_cache_misses_total") == 1


def test_a_fan_out_by_a_real_worker_is_observed(celery_worker, make_user, api, anon, redis, settings):
    settings.FANOUT_BATCH_SIZE = 2
    author, followers = make_user(), [make_user() for _ in range(5)]
    for f in followers:
        api(f).post(f"/v1/users/{author.id}/follow")
        ids(api(f))
    before = Scrape(anon)
    tweet_id = post(api(author))
    wait_for(lambda: all(redis.lindex(store.timeline_key(f.id), 0) == tweet_id.encode() for f in followers),
             what="the worker to deliver the tweet")
    # The lag is observed after the last batch's write: wait for it too.
    after = wait_for(lambda: (s := Scrape(anon)).value("timeline_fanout_lag_seconds_count", mode="push")
                     > before.value("timeline_fanout_lag_seconds_count", mode="push") and s,
                     what="the fan-out's lag to be observed")
    assert moved(before, after, "timeline_fanout_batch_size_count") == 3  # 2 + 2 + 1 followers
    assert moved(before, after, "timeline_fanout_deliveries_total") == 5
    lag = moved(before, after, "timeline_fanout_lag_seconds_sum", mode="push")
    assert 0 < lag < 15


def test_reconciler_restarts_are_counted(make_user, api, anon, monkeypatch):
    held = hold_timeline_tasks(monkeypatch, [])
    author = make_user()
    post(api(author))
    assert len(held) == 1  # the fan-out, never run: the tweet's fan-out is pending
    before = Scrape(anon)
    assert services.fanout_reconcile(older_than_seconds=0) == 1
    assert moved(before, Scrape(anon), "timeline_fanout_reconciler_restarts_total") == 1


def test_pages_read_from_postgresql_past_the_cache_are_counted(make_user, api, anon, settings):
    settings.TIMELINE_MAX_ENTRIES = 4
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    for n in range(7):
        post(api(author), f"tweet {n}")
    before = Scrape(anon)
    assert len(ids(api(reader), limit=3)) == 3  # within the cached four: no PostgreSQL
    first = Scrape(anon)
    assert moved(before, first, "timeline_pages_total") == 1
    assert moved(before, first, "timeline_postgres_pages_total") == 0
    assert len(scroll(api(reader), limit=3)) == 7  # 3 pages, the last two past the cache
    after = Scrape(anon)
    assert moved(first, after, "timeline_pages_total") == 3
    assert moved(first, after, "timeline_postgres_pages_total") == 2


def _publish(queue: str, count: int) -> None:
    """Send ``count`` tasks to ``queue`` on the real broker, where no worker consumes."""
    app.conf.task_always_eager = False
    try:
        for _ in range(count):
            app.send_task(services.RECONCILE_TASK, queue=queue)
    finally:
        app.conf.task_always_eager = True


def test_queue_length_counts_the_messages_waiting_in_a_redis_broker(anon, settings, redis):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the Redis broker's layout")
    queue = settings.CELERY_TASK_DEFAULT_QUEUE = f"metrics-{uuid.uuid4().hex[:8]}"
    key = f"{settings.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix']}{queue}"
    try:
        assert Scrape(anon).value("timeline_celery_queue_length", queue=queue) == 0
        _publish(queue, 3)
        scrape = Scrape(anon)
        assert scrape.value("timeline_celery_broker_up") == 1
        assert scrape.value("timeline_celery_queue_length", queue=queue) == 3
    finally:
        redis.delete(key)


def test_queue_length_counts_the_messages_waiting_in_an_amqp_broker(anon, settings):
    url = "amqp://guest:guest@127.0.0.1:5672//"
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    with Connection(url, connect_timeout=2) as conn:
        try:
            conn.ensure_connection(max_retries=1)
        except Exception:  # noqa: BLE001
            tool_missing("no RabbitMQ on 127.0.0.1:5672 (Debian: apt-get install rabbitmq-server)")
        settings.CELERY_BROKER_URL, settings.CELERY_TASK_DEFAULT_QUEUE = url, queue
        undeclared = Scrape(anon)  # no worker has declared the queue yet: empty, and the broker is up
        assert undeclared.value("timeline_celery_broker_up") == 1
        assert undeclared.value("timeline_celery_queue_length", queue=queue) == 0
        bound = Queue(queue, routing_key=queue)(conn.default_channel)
        bound.declare()
        try:
            assert Scrape(anon).value("timeline_celery_queue_length", queue=queue) == 0
            producer = conn.Producer()
            for n in range(2):
                producer.publish({"n": n}, routing_key=queue)
            scrape = wait_for(lambda: (s := Scrape(anon)).value("timeline_celery_queue_length", queue=queue) == 2
                              and s, what="RabbitMQ to count both messages")
            assert scrape.value("timeline_celery_broker_up") == 1
        finally:
            bound.delete()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"])
def test_an_unreachable_broker_is_a_gauge_not_a_failed_scrape(anon, settings, url):
    settings.CELERY_BROKER_URL = url
    start = time.monotonic()
    scrape = Scrape(anon)
    assert time.monotonic() - start < 5
    assert scrape.value("timeline_celery_broker_up") == 0
    assert not [s for s in scrape.samples if s.name == "timeline_celery_queue_length"]


class _RefuseAll(BaseThrottle):
    def allow_request(self, request, view):
        return False


class _LimitedView(APIView):
    authentication_classes, permission_classes = [], []
    throttle_classes = [_RefuseAll]
    throttle_scope = "tweet_create"

    def get(self, request):
        raise AssertionError("a refused request never reaches the view")


def test_a_rate_limit_refusal_is_counted_by_scope(anon):
    before = Scrape(anon)
    response = _LimitedView.as_view()(APIRequestFactory().get("/limited"))
    assert response.status_code == 429
    assert moved(before, Scrape(anon), "timeline_rate_limit_refusals_total", scope="tweet_create") == 1


def test_one_log_line_per_request_with_the_jwt_user(make_user, api, anon, caplog):
    reader = make_user()
    with caplog.at_level(logging.INFO, logger="timeline.request"):
        ids(api(reader), limit=5)
        anon.get("/v1/timeline/home")
    lines = [r for r in caplog.records if r.name == "timeline.request"]
    assert len(lines) == 2
    read, refused = lines
    assert (read.method, read.path, read.route, read.status, read.user_id) == (
        "GET", "/v1/timeline/home", TIMELINE_ROUTE, 200, reader.id)
    assert read.duration_ms >= 0
    assert read.getMessage().startswith("GET /v1/timeline/home 200 ")
    assert read.getMessage().endswith(f"ms user={reader.id}")
    assert (refused.status, refused.user_id) == (401, None)
    assert refused.getMessage().endswith("user=-")


def test_readyz_answers_in_seconds_naming_a_redis_that_never_answers(anon, settings):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        # Only for the probe: the test's own clean-up still reaches the real Redis.
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            start = time.monotonic()
            r = anon.get("/readyz")
            assert time.monotonic() - start < 5
    assert r.status_code == 503
    assert r.json()["failing"] == ["redis"]
