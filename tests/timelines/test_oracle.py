"""The oracle test: random histories of the timeline, checked against a plain query.

A hypothesis state machine registers users (some private), posts and deletes tweets, follows, unfollows and
approves follow requests, suspends and reinstates authors, moves the celebrity threshold, evicts every kind
of cached key, and runs the fan-out through a fake broker that delivers late, out of order, twice or never
(the reconciler then restarts what was lost). After every step it scrolls a few users' home timelines
through the API to the end (2-3 users, pages of 1-5) and compares the pages with the oracle, a plain query:
the tweets not deleted, by active authors among the reader's accepted followees and the reader, newest first.

While fan-out messages are in flight (queued or lost), a tweet they carry may be missing yet (or only from
later pages: a first page reads just the head of each list, and PostgreSQL below it), and nothing else may
differ. A ``settle`` step delivers everything (some messages twice, some lost) and runs the reconciler;
then the pages must be exactly the oracle's, and pull-to-refresh (``since=``) is checked too.
"""
import contextlib
import functools
import itertools
import time

import pytest
from django.conf import settings
from django.test import override_settings
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from core.redis import connection as redis_connection
from social import services as social_services
from social.models import Follow, User
from tests.helpers import hold_timeline_tasks
from timelines import services as tl_services
from timelines import store
from timelines.models import PendingFanout
from tweets import services as tweet_services
from tweets import snowflake
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)

MAX_USERS = 5
USER = st.integers(0, MAX_USERS - 1)  # an index into the example's users, modulo how many there are
PICK = st.integers(0, 99)  # an index into some list, modulo its length
THRESHOLDS = st.sampled_from([1, 2, 3, 1000])  # authors with this many followers or more are pulled
FANOUT_TASKS = (tl_services.FANOUT_TASK, tl_services.FANOUT_BATCH_TASK)  # the tweet id is their first argument
# After each step, 2-3 users' timelines are scrolled: (user, page size, pick of a tweet for `since=`).
LOOKS = st.lists(st.tuples(USER, st.integers(1, 5), PICK), min_size=2, max_size=3, unique_by=lambda look: look[0])


def step(**strategies):
    """A rule that then checks the timelines of a few users (``look``, drawn with the rule's arguments)."""
    def decorate(action):
        @rule(look=LOOKS, **strategies)
        @functools.wraps(action)
        def run(self, look, **kwargs):
            action(self, **kwargs)
            self.check(look)
        return run
    return decorate


def _head_only(read, head: int, *, prefix: int | None = None, **kwargs):
    """``store.read`` or ``author_read``, with the head read by a first page cut to ``head`` ids."""
    return read(prefix=prefix and min(prefix, head), **kwargs)


def _chunks(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)] or [[]]


class TimelineOracle(RuleBasedStateMachine):
    def __init__(self, make_user, api):
        super().__init__()
        self.make_user, self.api = make_user, api
        self.users: list[User] = []
        self.clients = {}
        self.live: list[Tweet] = []  # this example's tweets not deleted yet
        self.newest = 0  # this example's newest tweet id
        self.queue: list[tuple] = []  # the fake broker: (task, args) sent and not delivered yet
        self.lost: list[tuple] = []  # messages the broker dropped
        self.redis = redis_connection()
        self._undo = contextlib.ExitStack()  # settings and patches, undone at teardown
        self.patch = self._undo.enter_context(pytest.MonkeyPatch.context())
        hold_timeline_tasks(self.patch, self.queue)

    def teardown(self):
        with self._undo:
            self._drain()  # leave nothing pending to the next example
            self._reconcile()

    # --- Helpers -------------------------------------------------------------------

    def _user(self, index: int) -> User:
        return self.users[index % len(self.users)]

    def _pair(self, index: int, other: int) -> tuple[User, User]:
        """Two different users."""
        n = len(self.users)
        return self.users[index % n], self.users[(index + 1 + other % (n - 1)) % n]

    def _follow(self, follower: User, followee: User, approve: bool) -> None:
        """Follow (a suspended user cannot be followed); ``approve``: a private followee accepts at once."""
        if followee.is_active:
            state = social_services.follow_create(follower=follower, followee_id=followee.id)
            if state == Follow.State.REQUESTED and approve:
                social_services.follow_request_approve(followee=followee, follower_id=follower.id)

    def _post(self, authors: list[int]) -> None:
        """Each of ``authors`` (still active) posts a tweet, in turn."""
        for author in map(self._user, authors):
            if author.is_active:
                self.live.append(tweet_services.tweet_create(author=author, content=f"by {author.username}"))
                self.newest = self.live[-1].id

    def _deliver(self, index: int, again: bool = False) -> None:
        task, args = self.queue[index] if again else self.queue.pop(index)
        task.run(*args)

    def _drain(self, lose: frozenset[int] = frozenset()) -> None:
        """Deliver every queued message, the newest first (and what they send in turn), except that the
        broker loses the ``lose``-th ones."""
        for n in itertools.count():
            if not self.queue:
                return
            if n in lose:
                self.lost.append(self.queue.pop())
            else:
                self._deliver(-1)

    def _reconcile(self) -> None:
        # Only tweets minted before the current millisecond are "older than 0 seconds".
        while snowflake.lowest_id_at(int(time.time() * 1000)) <= self.newest:
            time.sleep(0.001)
        tl_services.fanout_reconcile(older_than_seconds=0)
        self._drain()

    def _set_threshold(self, threshold: int) -> None:
        self._undo.enter_context(override_settings(TIMELINE_CELEBRITY_THRESHOLD=threshold))

    def _delete_keys(self, pattern: str) -> None:
        keys = list(self.redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}{pattern}", count=1000))
        if keys:
            self.redis.delete(*keys)

    # --- Users and the follow graph -----------------------------------------------

    @initialize(private=st.lists(st.booleans(), min_size=4, max_size=4),
                follows=st.lists(st.booleans(), min_size=12, max_size=12), threshold=THRESHOLDS,
                authors=st.lists(USER, max_size=8), cap=st.integers(2, 5), slack=st.integers(0, 2),
                batch=st.integers(1, 2), head=st.integers(1, 5))
    def start(self, private, follows, threshold, authors, cap, slack, batch, head):
        """Four users who have read their timelines, follows among them (a flag per ordered pair; private
        users approve), a celebrity threshold and some tweets, delivered. Short lists, so pages cross from
        Redis into PostgreSQL; small batches, so fan-outs split. A first page reads only the head of each
        list (2 x limit + 20 ids): here only ``head`` ids, so that this matters with lists this short."""
        # (WhiteNoise's scan of the admin's static files, as each new client loads the middleware, would
        # otherwise take most of an example's time.)
        self._undo.enter_context(override_settings(TIMELINE_MAX_ENTRIES=cap, TIMELINE_TRIM_SLACK=slack,
                                                   FANOUT_BATCH_SIZE=batch, WHITENOISE_USE_FINDERS=False))
        for name in ("read", "author_read"):
            self.patch.setattr(store, name, functools.partial(_head_only, getattr(store, name), head))
        self.users = [self.make_user(is_private=p) for p in private]
        pairs = [(a, b) for a in self.users for b in self.users if a != b]
        for (follower, followee), yes in zip(pairs, follows, strict=True):
            if yes:
                self._follow(follower, followee, approve=True)
        self._set_threshold(threshold)
        for user in self.users:
            self.page(user)  # read once: the timeline is cached, so fan-outs write it
        self._post(authors)
        self._drain()

    @precondition(lambda self: len(self.users) < MAX_USERS)
    @step(private=st.booleans())
    def register(self, private):
        self.users.append(self.make_user(is_private=private))

    @step(followers=st.lists(USER, min_size=1, max_size=4), followee=USER, approve=st.booleans())
    def follow(self, followers, followee, approve):
        followee = self._user(followee)
        for follower in map(self._user, followers):
            if follower != followee:
                self._follow(follower, followee, approve=approve)

    @step(pick=PICK)
    def approve_a_request(self, pick):
        requests = list(Follow.objects.filter(followee__in=self.users, state=Follow.State.REQUESTED)
                        .order_by("follower_id", "followee_id").values_list("follower_id", "followee_id"))
        if requests:
            follower_id, followee_id = requests[pick % len(requests)]
            followee = next(u for u in self.users if u.id == followee_id)
            social_services.follow_request_approve(followee=followee, follower_id=follower_id)

    @step(follower=USER, other=USER)
    def unfollow(self, follower, other):
        follower, followee = self._pair(follower, other)
        social_services.follow_delete(follower=follower, followee_id=followee.id)

    @step(user=USER)
    def suspend_or_reinstate(self, user):
        user = self._user(user)
        suspend_or_reinstate = social_services.user_reinstate if not user.is_active else social_services.user_suspend
        suspend_or_reinstate(user_id=user.id)
        user.is_active = not user.is_active
        self.clients.pop(user.id, None)  # a suspension ends the user's sessions: reinstated, they sign in again

    @step(threshold=THRESHOLDS)
    def set_celebrity_threshold(self, threshold):
        self._set_threshold(threshold)

    # --- Tweets ----------------------------------------------------------------------

    @step(authors=st.lists(USER, min_size=1, max_size=4))
    def post(self, authors):
        self._post(authors)

    @precondition(lambda self: self.live)
    @step(pick=PICK)
    def delete(self, pick):
        tweet = self.live.pop(pick % len(self.live))
        tweet_services.tweet_delete(tweet_id=tweet.id, actor=tweet.author)

    # --- Caches ----------------------------------------------------------------------

    @step(user=USER)
    def evict_timeline(self, user):
        store.evict(user_id=self._user(user).id)

    @step(author=USER)
    def evict_pulled_list(self, author):
        self.redis.delete(store.author_key(self._user(author).id))

    @step()
    def flush_tweet_and_author_caches(self):
        self._delete_keys("tw:*")
        self._delete_keys("u2:*")

    @step()
    def flush_every_key(self):
        self._delete_keys("*")

    # --- The broker ------------------------------------------------------------------

    @precondition(lambda self: self.queue)
    @step(pick=PICK, again=st.booleans())
    def deliver(self, pick, again):
        """Deliver one queued message, in any order; ``again``: it stays queued, to come twice."""
        self._deliver(pick % len(self.queue), again=again)

    @precondition(lambda self: self.queue)
    @step(pick=PICK)
    def lose(self, pick):
        """The broker drops a queued message."""
        self.lost.append(self.queue.pop(pick % len(self.queue)))

    @step()
    def reconcile(self):
        """The periodic reconciler, early: it sends again whatever fan-out is still pending."""
        self._reconcile()

    @step(twice=st.lists(PICK, max_size=3), lose=st.frozensets(st.integers(0, 9), max_size=2))
    def settle(self, twice, lose):
        """Deliver everything in reverse order, some messages twice, some never (a batch sent meanwhile, say);
        then the reconciler sends again what is still pending."""
        self.queue += [self.queue[pick % len(self.queue)] for pick in twice if self.queue]
        self._drain(lose)
        self._reconcile()
        self.lost.clear()
        assert not PendingFanout.objects.filter(tweet__author__in=self.users).exists(), "a fan-out never finished"

    # --- The oracle ------------------------------------------------------------------

    def expected(self, user: User) -> list[str]:
        """What ``user`` should see: visible tweets of their accepted followees and their own, newest first."""
        authors = [*Follow.objects.filter(follower=user, state=Follow.State.ACCEPTED)
                   .values_list("followee_id", flat=True), user.id]
        return [str(tid) for tid in Tweet.objects.filter(author_id__in=authors, author__is_active=True,
                                                         deleted_at__isnull=True)
                .order_by("-id").values_list("id", flat=True)]

    def in_flight(self) -> set[str]:
        """The tweets whose fan-out messages are still queued, or lost."""
        return {str(args[0]) for task, args in self.queue + self.lost if task.name in FANOUT_TASKS}

    def check(self, look):
        for index, limit, pick in look:
            user = self._user(index)
            if not user.is_active:
                continue  # a suspended user cannot sign in
            expected = self.expected(user)
            pages = self.scroll(user, limit)
            seen = [tid for page in pages for tid in page]
            assert [int(t) for t in seen] == sorted({int(t) for t in seen}, reverse=True), "not newest first"
            if self.queue or self.lost:
                assert set(seen) <= set(expected), f"shown but not visible: {set(seen) - set(expected)}"
                missing, in_flight = set(expected) - set(seen), self.in_flight()
                assert missing <= in_flight, f"missing though delivered: {missing - in_flight}"
            else:
                assert pages == _chunks(expected, limit), f"the pages of user {index} at limit={limit}"
                if expected:
                    self.check_refresh(user, limit, since=expected[pick % len(expected)], expected=expected)

    def page(self, user: User, **params) -> dict:
        if user.id not in self.clients:
            self.clients[user.id] = self.api(user)
        r = self.clients[user.id].get("/v1/timeline/home", params)
        assert r.status_code == 200, r.content
        body = r.json()
        assert all(isinstance(t["tweet_id"], str) for t in body["data"])
        assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)
        assert body["prev_cursor"] is None or isinstance(body["prev_cursor"], str)
        return body

    def scroll(self, user: User, limit: int) -> list[list[str]]:
        """Every page of the user's timeline, following next_cursor to the end, checking each page."""
        pages, cursor = [], None
        while True:
            body = self.page(user, limit=limit, **({"cursor": cursor} if cursor else {}))
            ids = [t["tweet_id"] for t in body["data"]]
            assert cursor is None or all(int(t) < int(cursor) for t in ids), f"a page not below cursor={cursor}"
            assert body["prev_cursor"] == (ids[0] if ids else None)
            pages.append(ids)
            if body["next_cursor"] is None:
                return pages
            assert len(ids) == limit and body["next_cursor"] == ids[-1], "a short page, or a cursor not at its end"
            cursor = body["next_cursor"]

    def check_refresh(self, user: User, limit: int, since: str, expected: list[str]) -> None:
        """``since=`` gives the ``limit`` tweets just newer than it, newest first."""
        just_newer = [tid for tid in expected if int(tid) > int(since)][-limit:]
        body = self.page(user, since=since, limit=limit)
        assert [t["tweet_id"] for t in body["data"]] == just_newer, f"since={since}"
        assert body["prev_cursor"] == (just_newer[0] if just_newer else since)
        assert body["next_cursor"] == (just_newer[-1] if just_newer else None)  # `since` itself is older


def test_home_timelines_match_the_oracle(make_user, api):
    run_state_machine_as_test(
        lambda: TimelineOracle(make_user, api),
        # No explain phase: its line tracing makes shrinking a failure ~10x slower (minutes).
        settings=hypothesis_settings(max_examples=100, stateful_step_count=30, deadline=None, database=None,
                                     report_multiple_bugs=False, phases=[p for p in Phase if p != Phase.explain],
                                     suppress_health_check=[HealthCheck.too_slow]),
    )
