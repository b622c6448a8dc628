"""What the fan-out announces to the streams (``timelines.signals.tweet_delivered``): each
batch once when it is written, the author's own with the first, and nothing for a batch
run again after it was written (a task redelivered minutes later), which would otherwise
reach every stream process a second time (one restarted since has forgotten it)."""
import pytest
from django.db import DatabaseError, connection
from django.test import override_settings

from tests.helpers import post
from timelines import services as timeline_services
from timelines import store as timeline_store
from timelines.models import PendingFanout

pytestmark = [pytest.mark.django_db(transaction=True)]  # the fan-out starts when the post commits


@override_settings(FANOUT_BATCH_SIZE=3)
def test_each_batch_is_announced_once_and_a_batch_run_again_is_not(make_user, api, announced):
    author = make_user()
    followers = sorted((make_user() for _ in range(7)), key=lambda user: user.id)
    for follower in followers:
        api(follower).post(f"/v1/users/{author.id}/follow")
    tweet_id = int(post(api(author)))
    ids = [f.id for f in followers]
    # In any order (the coordinator hands the later batches on before writing its own).
    assert sorted(announced, key=lambda batch: batch[2]) == [
        (tweet_id, author.id, 0, ids[2]), (tweet_id, author.id, ids[2], ids[5]), (tweet_id, author.id, ids[5], ids[6])]
    announced.clear()
    # The second batch's message delivered again, as after a worker died before acknowledging it.
    assert timeline_services.fanout_batch(tweet_id=tweet_id, author_id=author.id, lo=ids[2], hi=ids[5]) == 0
    assert announced == []


def test_a_fanout_whose_record_failed_is_announced_by_its_first_run_and_never_again(make_user, api, announced):
    """PostgreSQL lost as the fan-out records itself done: the run raises, and is run again.
    The first run must have announced the tweet (its record may commit after all, with its
    answer lost, and nothing would announce it then), and the second must not announce it
    again (a stream process restarted in between would send it twice). The failure is a
    real one, from a trigger on the pending table."""
    author, follower = make_user(), make_user()
    api(follower).post(f"/v1/users/{author.id}/follow")
    tweet_id = int(post(api(author)))
    timeline_store.claim_release(name=f"announced:{tweet_id}:0:None")  # as if its fan-out had not run yet
    announced.clear()
    PendingFanout.objects.create(tweet_id=tweet_id)  # as it was before the fan-out ran
    table = PendingFanout._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN RAISE EXCEPTION 'the database is gone'; END $$")
        cursor.execute(f"CREATE TRIGGER test_refuse BEFORE DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION test_refuse()")
    try:
        with pytest.raises(DatabaseError, match="the database is gone"):
            timeline_services.fanout_tweet(tweet_id=tweet_id)
        assert announced == [(tweet_id, author.id, 0, None)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER test_refuse ON {table}")
            cursor.execute("DROP FUNCTION test_refuse()")
    timeline_services.fanout_tweet(tweet_id=tweet_id)
    assert announced == [(tweet_id, author.id, 0, None)]
    assert not PendingFanout.objects.filter(tweet_id=tweet_id).exists()
