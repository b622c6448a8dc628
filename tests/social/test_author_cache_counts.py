"""The author cache's follow counts and summaries never outlive a newer change: a suspension's
neighbours, refreshes reaching Redis out of commit order, and entries of an older layout."""
import threading

import orjson
import pytest
from django.conf import settings
from django.db import connection, connections

from core import redis as core_redis
from social import cache as author_cache
from social import services as social_services
from social.models import User

pytestmark = pytest.mark.django_db(transaction=True)  # the cache is refreshed once changes commit


def counts(user: User) -> tuple[int, int]:
    """``user``'s (followers, following) as the author cache shows them, and as PostgreSQL has them."""
    cached = author_cache.users_many([user.id])[user.id]
    row = User.objects.get(id=user.id)
    assert (cached.followers_count, cached.following_count) == (row.followers_count, row.following_count)
    return cached.followers_count, cached.following_count


def test_a_suspension_and_a_reinstatement_reach_the_neighbours_cached_counts(make_user):
    a, b, c = make_user(), make_user(), make_user()
    social_services.follow_create(follower=a, followee_id=b.id)
    social_services.follow_create(follower=b, followee_id=c.id)
    assert counts(a) == (0, 1) and counts(c) == (1, 0)  # cached now

    social_services.user_suspend(user_id=b.id)
    assert counts(a) == (0, 0) and counts(c) == (0, 0)

    social_services.user_reinstate(user_id=b.id)
    assert counts(a) == (0, 1) and counts(c) == (1, 0)


def test_a_batch_of_approvals_rewrites_the_cache_once(make_user, monkeypatch):
    owner = make_user(is_private=True)
    requesters = [make_user() for _ in range(3)]
    for requester in requesters:
        social_services.follow_create(follower=requester, followee_id=owner.id)
    counts(owner)
    calls = []
    real = author_cache.refresh_from_db

    def counted(*, user_ids):
        calls.append(set(user_ids))
        real(user_ids=user_ids)

    monkeypatch.setattr(author_cache, "refresh_from_db", counted)
    User.objects.filter(id=owner.id).update(is_private=False)

    assert social_services.follow_requests_accept_pending(followee_id=owner.id) == 3

    assert calls == [{owner.id, *(r.id for r in requesters)}]
    assert counts(owner) == (3, 0) and all(counts(r) == (0, 1) for r in requesters)


def test_a_count_refresh_reaching_redis_late_does_not_bring_back_an_older_count(make_user):
    """A refresh that read the row before a later change committed, and writes after that
    change's own refresh (two follows on one account, their after-commit work reordered)."""
    a, b, author = make_user(), make_user(), make_user()
    social_services.follow_create(follower=a, followee_id=author.id)
    read_early = User.objects.get(id=author.id)  # the first follow's refresh reads here...
    social_services.follow_create(follower=b, followee_id=author.id)
    assert counts(author) == (2, 0)

    author_cache.refresh_many([read_early])  # ...and writes only now

    assert counts(author) == (2, 0)


def test_every_change_to_a_shown_field_moves_the_version_the_cache_orders_by(make_user):
    a, b = make_user(), make_user()
    versions = [User.objects.get(id=b.id).cache_version]
    for change in (lambda: social_services.follow_create(follower=a, followee_id=b.id),
                   lambda: social_services.user_update(user=b, display_name="Bee"),
                   lambda: User.objects.filter(id=b.id).update(username="renamed_b"),
                   lambda: social_services.user_suspend(user_id=b.id)):
        change()
        versions.append(User.objects.get(id=b.id).cache_version)
    User.objects.filter(id=b.id).update(last_login=None, cache_version=0)  # nothing shown changed
    versions.append(User.objects.get(id=b.id).cache_version)
    assert versions == sorted(versions) and len(set(versions)) == 5 and versions[-1] == versions[-2]


def test_an_entry_of_an_older_layout_is_never_overwritten_with_a_row_read_before_a_suspension(make_user):
    """Entries written before the account fields existed are a miss; the fill that replaces them
    is a SET NX like any other, so it cannot land over the suspension's own refresh."""
    user = make_user()
    old_key = f"{settings.REDIS_KEY_PREFIX}u:{user.id}"
    old_entry = orjson.dumps({"user_id": str(user.id), "username": user.username, "display_name": user.display_name,
                              "active": True, "private": False})
    core_redis.connection().set(old_key, old_entry)
    suspended = threading.Event()

    def suspend():
        try:
            social_services.user_suspend(user_id=user.id)
        finally:
            connections.close_all()
        suspended.set()

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if 'FROM "social_user"' in sql and not suspended.is_set():  # the fill has read the row
            t = threading.Thread(target=suspend)
            t.start()
            t.join()
        return result

    with connection.execute_wrapper(wrapper):
        assert author_cache.get_or_fill_many([user.id])[user.id].active is True  # as read

    assert suspended.is_set()
    assert author_cache.get_or_fill_many([user.id])[user.id].active is False
    assert core_redis.connection().get(old_key) == old_entry  # not read, not written

