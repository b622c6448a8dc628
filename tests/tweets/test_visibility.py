"""Who sees what, as QuerySet methods on real rows (``Tweet.objects.live``/``visible_to``,
``Follow.objects.accepted``, ``User.objects.seen_by``), and the raw SQL built from the same
predicates (``tweets.models.live_sql``, ``social.models.accepted_sql``)."""
import pytest
from django.db import connection

from social import selectors as social_selectors
from social import services as social_services
from social.models import Follow, User, accepted_sql
from tweets import services as tweet_services
from tweets.models import Tweet, live_sql

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_user):
    """A public author, a private one, a follower each (the private one's accepted, and one
    pending), a stranger, and a suspended author; one live and one deleted tweet by each author."""
    public, private, suspended = make_user(), make_user(is_private=True), make_user()
    fan, pending, stranger = make_user(), make_user(), make_user()
    social_services.follow_create(follower=fan, followee_id=public.id)
    social_services.follow_create(follower=fan, followee_id=private.id)
    social_services.follow_request_approve(followee=private, follower_id=fan.id)
    social_services.follow_create(follower=pending, followee_id=private.id)
    tweets = {}
    for author in (public, private, suspended):
        live = tweet_services.tweet_create(author=author, content="live")
        gone = tweet_services.tweet_create(author=author, content="gone")
        tweet_services.tweet_delete(tweet_id=gone.id, actor=author)
        tweets[author.id] = live.id
    social_services.user_suspend(user_id=suspended.id)
    return {"public": public, "private": private, "suspended": suspended, "fan": fan, "pending": pending,
            "stranger": stranger, "live": tweets}


def test_live_leaves_out_deleted_tweets(world):
    assert set(Tweet.objects.live().values_list("id", flat=True)) == set(world["live"].values())
    assert Tweet.objects.count() == 6


def test_accepted_leaves_out_requests(world):
    private = world["private"]
    assert set(Follow.objects.accepted().filter(followee=private).values_list("follower_id", flat=True)) == {
        world["fan"].id}
    assert set(Follow.objects.requested().filter(followee=private).values_list("follower_id", flat=True)) == {
        world["pending"].id}


@pytest.mark.parametrize(("viewer", "sees"), [
    ("fan", {"public", "private"}),
    ("pending", {"public"}),
    ("stranger", {"public"}),
    ("private", {"public", "private"}),
    ("suspended", {"public"}),
])
def test_visible_to_is_live_tweets_by_active_authors_the_viewer_may_see(world, viewer, sees):
    shown = set(Tweet.objects.visible_to(world[viewer].id).values_list("id", flat=True))
    assert shown == {world["live"][world[name].id] for name in sees}


@pytest.mark.parametrize(("viewer", "may"), [("fan", True), ("pending", False), ("stranger", False),
                                             ("private", True)])
def test_one_rule_for_the_graph_the_tweets_and_a_cached_entry(world, viewer, may):
    private, viewer_id = world["private"], world[viewer].id
    assert social_selectors.may_see_graph_of(viewer_id=viewer_id, user=private) is may
    assert User.objects.seen_by(viewer_id).filter(id=private.id).exists() is may
    assert social_selectors.may_see_account(viewer_id=viewer_id, account_id=private.id, private=True) is may


def test_the_raw_sql_predicates_select_what_the_querysets_do(world):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Tweet._meta.db_table} t WHERE {live_sql('t')}")
        assert {row[0] for row in cursor.fetchall()} == set(Tweet.objects.live().values_list("id", flat=True))
        cursor.execute(f"SELECT id FROM {Follow._meta.db_table} WHERE {accepted_sql()}")
        assert {row[0] for row in cursor.fetchall()} == set(Follow.objects.accepted().values_list("id", flat=True))
