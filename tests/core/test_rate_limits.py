"""The abuse limits (SPEC §6): posting, follows, timeline reads, logins and registrations,
counted in the real Redis under the test's prefix, through the HTTP API."""
import os
import subprocess
import sys
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as redis_py
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from core import throttling, usernames
from core.rates import Rate, parse_rate
from social import services as social_services
from social.models import User
from tests.factories import PASSWORD
from tests.helpers import free_port, post_tweet
from tweets.models import Tweet

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "/v1/auth/token"
REGISTER = "/v1/auth/register"
HOME = "/v1/timeline/home"
LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def assert_limited(r, *, limit: int, remaining: int, window: int):
    """The response carries the limit's headers, the reset within the window from now."""
    assert r["X-RateLimit-Limit"] == str(limit)
    assert r["X-RateLimit-Remaining"] == str(remaining)
    now = time.time()
    assert now - 1 <= int(r["X-RateLimit-Reset"]) <= now + window + 1


def assert_refused(r, *, limit: int, window: int):
    assert r.status_code == 429, r.content
    assert "detail" in r.json()
    retry_after = int(r["Retry-After"])  # whole seconds
    assert 1 <= retry_after <= window
    assert_limited(r, limit=limit, remaining=0, window=window)


def login(client, username: str, password: str = PASSWORD, ip: str = "192.0.2.1", **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=ip, **extra)


def register(client, username: str, ip: str = "192.0.2.1", **extra):
    return client.post(REGISTER, {"username": username, "password": PASSWORD}, format="json",
                       REMOTE_ADDR=ip, **extra)


# --- rates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "rate"), [
    ("30/min", Rate(30, 60)), ("900/15min", Rate(900, 900)), ("10/m", Rate(10, 60)),
    ("100/hour", Rate(100, 3600)), ("5/s", Rate(5, 1)), ("1000/day", Rate(1000, 86400)),
    ("20/2h", Rate(20, 7200)), ("7/second", Rate(7, 1)), (" 3 / 10 minutes ", Rate(3, 600)),
])
def test_rates_take_a_multiple_of_the_unit(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "30", "30/", "/min", "abc", "30/fortnight", "0/min", "30/0min",
                                  "-1/min", "30/min/2", "1.5/min", "30 per min"])
def test_a_bad_rate_is_refused(text):
    with pytest.raises(ValueError):
        parse_rate(text)


def test_a_bad_rate_in_the_environment_stops_startup():
    def start(**env):
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("RATE_LIMIT_", "PYTEST_"))}
        environ |= {"DJANGO_SETTINGS_MODULE": "config.settings.local", **env}
        return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=environ,
                              capture_output=True, text=True, timeout=120)

    assert start(RATE_LIMIT_TIMELINE="900/15min").returncode == 0
    refused = start(RATE_LIMIT_TIMELINE="900 every 15 minutes")
    assert refused.returncode != 0
    assert "ImproperlyConfigured: RATE_LIMIT_TIMELINE" in refused.stderr


def test_a_bad_rate_set_at_run_time_is_a_configuration_error(make_user, api, settings):
    settings.RATE_LIMIT_TWEETS = "lots"
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_TWEETS"):
        post_tweet(api(make_user()), "x")


# --- posting, follows, timeline reads: per user ------------------------------------------


def test_posting_is_limited_per_user(make_user, api, settings):
    settings.RATE_LIMIT_TWEETS = "3/min"
    alice, bob = make_user(), make_user()
    client = api(alice)
    for remaining in (2, 1, 0):
        r = post_tweet(client, "x")
        assert r.status_code == 201
        assert_limited(r, limit=3, remaining=remaining, window=60)
    before = REGISTRY.get_sample_value("timeline_rate_limit_refusals_total", {"scope": "tweet_create"}) or 0
    assert_refused(post_tweet(client, "one too many"), limit=3, window=60)
    assert REGISTRY.get_sample_value("timeline_rate_limit_refusals_total", {"scope": "tweet_create"}) == before + 1
    assert Tweet.objects.filter(author=alice).count() == 3  # refused before the view
    assert post_tweet(api(bob), "x").status_code == 201  # each user has a counter of their own


def test_follows_unfollows_and_request_answers_share_one_limit_per_user(make_user, api, settings):
    settings.RATE_LIMIT_FOLLOWS = "4/min"
    alice, bob, carol, dave = make_user(is_private=True), make_user(), make_user(), make_user()
    for requester in (bob, carol):
        social_services.follow_create(follower=requester, followee_id=alice.id)
    client = api(alice)
    answers = [client.post(f"/v1/users/{dave.id}/follow"), client.delete(f"/v1/users/{dave.id}/follow"),
               client.post(f"/v1/follow-requests/{bob.id}/approve"),
               client.post(f"/v1/follow-requests/{carol.id}/reject")]
    assert [r.status_code for r in answers] == [200] * 4
    assert [r["X-RateLimit-Remaining"] for r in answers] == ["3", "2", "1", "0"]
    assert_refused(client.post(f"/v1/users/{dave.id}/follow"), limit=4, window=60)
    assert_refused(client.delete(f"/v1/users/{bob.id}/follow"), limit=4, window=60)
    assert api(bob).post(f"/v1/users/{dave.id}/follow").status_code == 200  # bob's own counter


def test_timeline_reads_are_limited_per_user_over_a_multi_minute_window(make_user, api, settings):
    settings.RATE_LIMIT_TIMELINE = "2/15min"
    alice, bob = make_user(), make_user()
    client = api(alice)
    for remaining in (1, 0):
        r = client.get(HOME)
        assert r.status_code == 200
        assert_limited(r, limit=2, remaining=remaining, window=900)
    refused = client.get(HOME)
    assert_refused(refused, limit=2, window=900)
    assert int(refused["Retry-After"]) > 60  # the window is fifteen minutes, not one
    assert api(bob).get(HOME).status_code == 200


def test_profile_changes_are_limited_per_user_and_reading_ones_profile_is_not(make_user, api, settings):
    """Going private or public moves every one of the user's media objects: no flood of flips."""
    settings.RATE_LIMIT_PROFILE = "2/min"
    client = api(make_user())
    codes = [client.patch("/v1/users/me", {"is_private": flag}, format="json").status_code
             for flag in (True, False, True)]
    assert codes == [200, 200, 429]
    assert client.patch("/v1/users/me", {"display_name": "x"}, format="json")["Retry-After"]
    assert all(client.get("/v1/users/me").status_code == 200 for _ in range(3))


def test_views_without_a_scope_carry_no_limit_headers(make_user, api, settings):
    settings.RATE_LIMIT_TWEETS = settings.RATE_LIMIT_TIMELINE = "1/min"
    client = api(make_user())
    r = client.get("/v1/users/me")
    assert r.status_code == 200
    assert not any(h in r for h in LIMIT_HEADERS)


# --- login: per username and per IP, before the password is checked -----------------------


def test_logins_are_limited_per_username_whatever_its_case_and_the_ip(make_user, anon, settings):
    settings.RATE_LIMIT_LOGIN = "3/min"
    make_user(username="Alice")
    make_user(username="bob")
    for n in range(3):
        assert login(anon, "alice", "wrong", ip=f"198.51.100.{n}").status_code == 401
    # The right password, another spelling, a fresh IP: the username's window is closed.
    assert_refused(login(anon, "ALICE", ip="198.51.100.9"), limit=3, window=60)
    assert login(anon, "bob", ip="198.51.100.9").status_code == 200


def test_logins_are_limited_per_ip_whatever_the_username(make_user, anon, settings):
    settings.RATE_LIMIT_LOGIN = "3/min"
    users = [make_user() for _ in range(4)]
    for user in users[:3]:
        r = login(anon, user.username, ip="203.0.113.7")
        assert r.status_code == 200
    assert_refused(login(anon, users[3].username, ip="203.0.113.7"), limit=3, window=60)
    assert login(anon, users[3].username, ip="203.0.113.8").status_code == 200


def test_a_refused_login_never_reaches_the_password_hasher(make_user, anon, settings, hashings):
    settings.RATE_LIMIT_LOGIN = "2/min"
    make_user(username="victim")
    assert [login(anon, "victim", "guess-1").status_code, login(anon, "victim", "guess-2").status_code] == [401, 401]
    assert hashings, "the allowed attempts checked the password"
    hashed = len(hashings)
    for n in range(20):
        assert login(anon, "victim", f"guess-{n}", ip=f"198.51.100.{n}").status_code == 429  # per username
        assert login(anon, f"nobody{n}", "guess").status_code == 429  # per IP
    assert len(hashings) == hashed


def test_odd_login_bodies_are_answered_as_before_and_never_hashed(anon, settings, hashings):
    settings.RATE_LIMIT_LOGIN = "1/min"
    assert anon.post(TOKEN, data="{not json", content_type="application/json").status_code == 400
    assert anon.post(TOKEN, {"username": "x", "password": "y"}).status_code == 415  # not JSON
    assert anon.post(TOKEN, {"username": ["x"], "password": "y"}, format="json").status_code == 400
    assert hashings == []


@pytest.mark.parametrize("username", [1234567890123, ["victim"], None, {"name": "victim"}, True])
def test_a_username_that_is_not_one_string_is_a_400_before_anything_is_counted_or_hashed(
        make_user, anon, settings, hashings, redis, username):
    """A JSON number was read by the login as its digits (a user named ``1234567890123``
    signed in) while the limit counted no username at all: only the per-IP limit held."""
    settings.RATE_LIMIT_LOGIN = "1/min"
    make_user(username="1234567890123")
    make_user(username="victim")
    hashed = len(hashings)
    for n in range(3):
        r = anon.post(TOKEN, {"username": username, "password": PASSWORD}, format="json", REMOTE_ADDR=f"192.0.2.{n}")
        assert r.status_code == 400, r.content
        assert r.json() == {"username": ["username must be given once, as a string."]}
    assert len(hashings) == hashed
    assert not list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:login:*"))  # refused before counting


@pytest.mark.parametrize(("spelling", "answer"), [
    ("ALICE", 429), ("Alice", 429),
    ("ａｌｉｃｅ", 429),  # full-width: NFKC's "alice", as Django's sign-in forms read it
    ("alıce", 401),  # dotless i: PostgreSQL's upper() made it ALICE, the limit's casefold() did not
    (" alice ", 429),  # DRF's field strips it before the login
])
def test_every_spelling_that_reaches_an_account_meets_its_username_limit(make_user, anon, settings, spelling, answer):
    settings.RATE_LIMIT_LOGIN = "3/min"
    make_user(username="alice")
    for n in range(3):
        assert login(anon, "alice", "wrong", ip=f"198.51.100.{n}").status_code == 401
    # The right password, from a fresh IP: refused if the spelling is alice's, and
    # otherwise it names no account at all (it never signs in past alice's counter).
    assert login(anon, spelling, ip="198.51.100.9").status_code == answer


@pytest.mark.parametrize("spelling", ["alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ", " alice\t"])
def test_logins_look_up_the_name_the_limit_counts(make_user, anon, spelling):
    user = make_user(username="Alice")
    r = login(anon, spelling)
    assert r.status_code == 200, r.content
    assert User.objects.get_by_natural_key(spelling) == user
    assert usernames.canonical(spelling) == "alice"


def test_canonical_usernames_are_the_same_however_the_login_cleaned_the_name():
    """The limit reads the name as sent; the login looks up what its field made of it
    (DRF strips it; Django's forms strip it and apply NFKC) and normalises again."""
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        for sent in (chr(code), f"{chr(code)}alice{chr(code)}"):
            once = usernames.canonical(sent)
            assert usernames.canonical(once) == once, hex(code)
            assert usernames.canonical(sent.strip()) == once, hex(code)
            assert usernames.canonical(unicodedata.normalize("NFKC", sent.strip())) == once, hex(code)


# --- the admin's sign-in page: the login limit ---------------------------------------------


def test_the_admin_sign_in_counts_against_the_login_limit_of_the_api(client, make_user, anon, settings, hashings):
    settings.RATE_LIMIT_LOGIN = "3/min"
    make_user(username="root")
    assert login(anon, "root", "wrong", ip="198.51.100.1").status_code == 401
    assert login(anon, "ROOT", "wrong", ip="198.51.100.2").status_code == 401
    page = client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="198.51.100.3")
    assert page.status_code == 200 and b"errornote" in page.content
    hashed = len(hashings)
    refused = client.post("/admin/login/", {"username": "Root", "password": PASSWORD}, REMOTE_ADDR="198.51.100.4")
    assert refused.status_code == 429
    assert b"Too many sign-in attempts" in refused.content and 1 <= int(refused["Retry-After"]) <= 60
    assert "_auth_user_id" not in client.session
    assert len(hashings) == hashed  # refused before the password was checked
    # The API's login meets the counter the admin's attempts filled.
    assert_refused(login(anon, "root", ip="198.51.100.5"), limit=3, window=60)


def test_the_admin_sign_in_is_limited_per_ip(client, make_user, settings):
    settings.RATE_LIMIT_LOGIN = "2/min"
    codes = [client.post("/admin/login/", {"username": f"nobody{n}", "password": "x"},
                         REMOTE_ADDR="203.0.113.50").status_code for n in range(3)]
    assert codes == [200, 200, 429]


def test_the_admin_sign_in_refuses_two_usernames(client, settings, hashings):
    r = client.post("/admin/login/", "username=a&username=b&password=x",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and b"username must be given once" in r.content
    assert hashings == []


def test_the_admin_sign_in_fails_closed_without_redis(client, make_user, limiter_down):
    make_user(username="root")
    r = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert r.status_code == 503 and r["Retry-After"] == "5"
    assert "_auth_user_id" not in client.session


def test_the_mastodon_sign_in_form_fails_closed_without_redis_and_refuses_two_usernames(
        client, make_user, limiter_down, hashings):
    """It asked Redis without a guard: an unreachable limiter was a 500."""
    make_user(username="dave")
    hashed = len(hashings)
    r = client.post("/oauth/login", {"username": "dave", "password": PASSWORD})
    assert r.status_code == 503 and r["Retry-After"] == "5" and b'id="refusal"' in r.content
    r = client.post("/oauth/login", "username=dave&username=eve&password=x",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and b"username must be given once" in r.content
    assert len(hashings) == hashed and "_auth_user_id" not in client.session


# --- registration: per IP -----------------------------------------------------------------


def test_registrations_are_limited_per_ip(anon, settings):
    settings.RATE_LIMIT_REGISTER = "2/hour"
    for n, remaining in ((0, 1), (1, 0)):
        r = register(anon, f"newcomer{n}")
        assert r.status_code == 201
        assert_limited(r, limit=2, remaining=remaining, window=3600)
    refused = register(anon, "newcomer2")
    assert_refused(refused, limit=2, window=3600)
    assert int(refused["Retry-After"]) > 60
    assert not User.objects.filter(username="newcomer2").exists()
    assert register(anon, "newcomer3", ip="192.0.2.200").status_code == 201


def test_app_registrations_have_a_limit_of_their_own(anon, settings):
    """Registering an app and an account shared one bucket: a client's app registration
    used up a sign-up, and the other way round."""
    settings.RATE_LIMIT_REGISTER = "1/hour"
    settings.RATE_LIMIT_APP_REGISTER = "2/hour"
    assert register(anon, "newcomer").status_code == 201
    apps = [anon.post("/api/v1/apps", {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
                      REMOTE_ADDR="192.0.2.1") for _ in range(3)]
    assert [r.status_code for r in apps] == [200, 200, 429]
    assert int(apps[2]["Retry-After"]) > 60
    assert register(anon, "another").status_code == 429  # the sign-ups' own window, closed by the first
    assert anon.post("/api/v1/apps", {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
                     REMOTE_ADDR="192.0.2.2").status_code == 200


# --- the client's IP ------------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_unless_proxies_are_trusted(anon, settings):
    settings.RATE_LIMIT_REGISTER = "1/hour"
    assert register(anon, "first", HTTP_X_FORWARDED_FOR="203.0.113.1").status_code == 201
    # Same REMOTE_ADDR, another claimed origin: still the same client.
    assert register(anon, "second", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 429


def test_behind_a_trusted_proxy_the_ip_it_saw_counts_not_what_the_client_claims(anon, settings):
    settings.RATE_LIMIT_REGISTER = "1/hour"
    settings.RATE_LIMIT_TRUSTED_PROXIES = 1
    proxy = {"ip": "10.0.0.2"}
    assert register(anon, "first", HTTP_X_FORWARDED_FOR="1.1.1.1, 203.0.113.1", **proxy).status_code == 201
    # A forged left-hand entry changes nothing: the proxy appended the real address.
    assert register(anon, "second", HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.1", **proxy).status_code == 429
    assert register(anon, "third", HTTP_X_FORWARDED_FOR="203.0.113.2", **proxy).status_code == 201


@pytest.mark.parametrize(("meta", "proxies", "ip"), [
    ({"REMOTE_ADDR": "192.0.2.1"}, 0, "192.0.2.1"),
    ({"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, 0, "192.0.2.1"),
    ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "a, 203.0.113.9, 10.0.0.5"}, 2, "203.0.113.9"),
    ({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}, 2, "10.0.0.1"),  # too few hops
    ({"REMOTE_ADDR": "2001:db8:1:2:3:4:5:6"}, 0, "2001:db8:1:2::"),  # one /64, one client
    ({"REMOTE_ADDR": "::ffff:192.0.2.1"}, 0, "192.0.2.1"),
])
def test_client_ip(settings, meta, proxies, ip):
    settings.RATE_LIMIT_TRUSTED_PROXIES = proxies
    assert throttling.client_ip(RequestFactory().get("/", **meta)) == ip


# --- one counter in Redis, shared by every process -------------------------------------------


def test_the_counter_lives_in_redis_under_the_prefix_for_every_process(make_user, api, settings, redis):
    settings.RATE_LIMIT_TWEETS = "5/min"
    alice = make_user()
    client = api(alice)
    assert post_tweet(client, "x").status_code == 201
    key = f"{settings.REDIS_KEY_PREFIX}rl:tweet_create:u:{{{alice.id}}}"
    assert redis.get(key) == b"1"
    assert 0 < redis.pttl(key) <= 60_000
    # Another worker's requests are counts on the same key: here a separate Redis
    # client adds three of them.
    other = (RedisCluster if settings.REDIS_CLUSTER else redis_py.Redis).from_url(settings.REDIS_URL)
    try:
        other.incrby(key, 3)
    finally:
        other.close()
    r = post_tweet(client, "x")
    assert r.status_code == 201
    assert r["X-RateLimit-Remaining"] == "0"
    assert post_tweet(client, "x").status_code == 429


def test_concurrent_requests_never_pass_the_limit(settings):
    rate = Rate(limit=10, seconds=60)
    with ThreadPoolExecutor(16) as pool:
        decisions = list(pool.map(lambda _: throttling.hit(scope="test", who=["u:{1}"], rate=rate), range(64)))
    assert sum(d.allowed for d in decisions) == 10
    assert {d.remaining for d in decisions if d.allowed} == set(range(10))


def test_a_request_refused_by_one_limit_counts_against_none(settings, redis):
    rate = Rate(limit=1, seconds=60)
    assert throttling.hit(scope="test", who=["ip:a"], rate=rate).allowed
    assert not throttling.hit(scope="test", who=["ip:a", "name:x"], rate=rate).allowed
    assert redis.get(f"{settings.REDIS_KEY_PREFIX}rl:test:name:x") is None
    assert throttling.hit(scope="test", who=["ip:b", "name:x"], rate=rate).allowed


# --- Redis unreachable ------------------------------------------------------------------------


@pytest.fixture
def limiter_down(monkeypatch):
    """The limiter's Redis is a port nothing listens on (the rest of Redis still works)."""
    # Without retries, as django-redis's client of the limiter has none.
    dead = redis_py.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, socket_timeout=1,
                          retry=Retry(NoBackoff(), 0))
    monkeypatch.setattr(throttling, "_redis", lambda: dead)
    # A timeline read asks for its limit in the reader's own round trip (throttling.prefetch),
    # on the product's Redis: with the limiter's down, nothing can be asked there either.
    monkeypatch.setattr(throttling, "prefetch", lambda *args, **kwargs: None)
    yield
    dead.close()


def test_posts_follows_and_reads_fail_open_without_headers(make_user, api, settings, limiter_down, caplog):
    settings.RATE_LIMIT_TWEETS = settings.RATE_LIMIT_FOLLOWS = settings.RATE_LIMIT_TIMELINE = "1/min"
    alice, bob = make_user(), make_user()
    client = api(alice)
    answers = [post_tweet(client, "a"), post_tweet(client, "b"), client.post(f"/v1/users/{bob.id}/follow"),
               client.delete(f"/v1/users/{bob.id}/follow"), client.get(HOME), client.get(HOME)]
    assert [r.status_code for r in answers] == [201, 201, 200, 200, 200, 200]
    assert not any(h in r for r in answers for h in LIMIT_HEADERS)
    assert "rate limit tweet_create unavailable, not applied" in caplog.text


def test_logins_and_registrations_fail_closed_with_503(make_user, anon, limiter_down, hashings, caplog):
    make_user(username="dave")
    hashed = len(hashings)
    for r in (login(anon, "dave"), register(anon, "eve")):
        assert r.status_code == 503, r.content
        assert "rate limit" in r.json()["detail"]
        assert r["Retry-After"] == "5"
    assert len(hashings) == hashed
    assert not User.objects.filter(username="eve").exists()
    assert "rate limit login unavailable, refusing" in caplog.text
