"""A broker outage at post time costs the fan-out, never the tweet or a 2xx."""
import time

import pytest

from config.celery_app import app
from tests.helpers import drop_broker_pools
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dead_broker():
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = "redis://127.0.0.1:1/0", False
    drop_broker_pools()  # pooled per URL: start pools on the dead one
    try:
        yield
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
        drop_broker_pools()


def test_posting_while_the_broker_is_down_still_answers_201(dead_broker, make_user, api):
    author = make_user()
    started = time.monotonic()
    r = api(author).post("/v1/tweets", {"content": "the broker is down"}, format="json")
    elapsed = time.monotonic() - started
    assert r.status_code == 201
    assert Tweet.objects.filter(id=int(r.json()["tweet_id"])).exists()
    # The author still sees it: the read path rebuilds from PostgreSQL.
    assert [t["tweet_id"] for t in api(author).get("/v1/timeline/home").json()["data"]] == [r.json()["tweet_id"]]
    print(f"post with a dead broker took {elapsed:.2f}s")
