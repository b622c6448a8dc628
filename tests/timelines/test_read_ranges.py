"""Bounded reads of the home timeline (``timeline_page_for_user``'s ``after``, and ``since``
with ``cursor``): the ranges Mastodon's ``since_id`` and ``min_id``+``max_id`` ask for, checked
against the plain order of the tweets across the seam between the cache and PostgreSQL, with a
celebrity's pulled tweets merged in."""
import pytest
from django.test import override_settings

from social import services as social_services
from timelines.selectors import timeline_page_for_user
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(page) -> list[int]:
    return [t.tweet_id for t in page.tweets]


@pytest.fixture
def timeline(make_user):
    """A reader following a pushed author and a celebrity (pulled), whose cache holds only the
    newest 4 pushed ids: (the reader, every tweet id newest first)."""
    with override_settings(TIMELINE_MAX_ENTRIES=4, TIMELINE_TRIM_SLACK=0, TIMELINE_CELEBRITY_THRESHOLD=2):
        reader, author, star, fan = make_user(), make_user(), make_user(), make_user()
        for follower in (reader, fan):
            social_services.follow_create(follower=follower, followee_id=star.id)
        social_services.follow_create(follower=reader, followee_id=author.id)
        timeline_page_for_user(user_id=reader.id, limit=1)  # cached from now on
        posted = [tweet_services.tweet_create(author=(author, star)[n % 3 == 0], content=f"t{n}").id
                  for n in range(15)]
        yield reader, posted[::-1]


def test_after_reads_the_newest_page_above_it(timeline):
    reader, newest = timeline
    with override_settings(TIMELINE_MAX_ENTRIES=4, TIMELINE_TRIM_SLACK=0, TIMELINE_CELEBRITY_THRESHOLD=2):
        for after_index, limit in ((12, 5), (12, 20), (3, 2), (0, 5), (14, 40)):
            page = timeline_page_for_user(user_id=reader.id, limit=limit, after=newest[after_index])
            assert _ids(page) == newest[:after_index][:limit]
            has_more = after_index > limit
            assert (page.next_cursor is not None) == has_more
        page = timeline_page_for_user(user_id=reader.id, limit=3, cursor=newest[5], after=newest[12])
        assert _ids(page) == newest[6:9]


def test_since_with_a_cursor_reads_between_them(timeline):
    reader, newest = timeline
    with override_settings(TIMELINE_MAX_ENTRIES=4, TIMELINE_TRIM_SLACK=0, TIMELINE_CELEBRITY_THRESHOLD=2):
        page = timeline_page_for_user(user_id=reader.id, limit=20, since=newest[12], cursor=newest[2])
        assert _ids(page) == newest[3:12]
        page = timeline_page_for_user(user_id=reader.id, limit=3, since=newest[12], cursor=newest[2])
        assert _ids(page) == newest[9:12]  # the oldest three of the range: no gap above ``since``
        page = timeline_page_for_user(user_id=reader.id, limit=3, since=newest[3], cursor=newest[2])
        assert _ids(page) == []


def test_since_and_after_together_are_refused(make_user):
    with pytest.raises(ValueError):
        timeline_page_for_user(user_id=make_user().id, limit=1, since=1, after=1)
