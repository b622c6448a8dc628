"""The live streams, from outside: a real stream process (uvicorn, as the Procfile runs it)
reading the test database and Redis, real SSE and WebSocket clients, posts and follows
made through the APIs (their fan-out runs as the suite runs tasks, and publishes to the
stream process through Redis)."""
import json
import time

import pytest
import requests
from rest_framework.test import APIClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from social import services as social_services
from tests.factories import PASSWORD
from tests.helpers import ids, wait_for
from timelines import services as timeline_services
from timelines.signals import tweet_delivered

from .sse import SseReader

pytestmark = [pytest.mark.django_db(transaction=True)]


def jwt_of(client: APIClient) -> str:
    return client._credentials["HTTP_AUTHORIZATION"].split()[1]


def oauth_token(user, scope: str) -> str:
    app = APIClient().post("/api/v1/apps", {"client_name": "stream tests", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                                            "scopes": "read write follow"}).json()
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app["client_id"],
                                          "client_secret": app["client_secret"], "username": user.username,
                                          "password": PASSWORD, "scope": scope})
    assert r.status_code == 200, r.content
    return r.json()["access_token"]


def post(client: APIClient, content: str) -> str:
    r = client.post("/v1/tweets", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["tweet_id"]


def follow(client: APIClient, user) -> None:
    assert client.post(f"/v1/users/{user.id}/follow").status_code in (200, 201, 202)


def tweets_of(reader: SseReader) -> list[str]:
    return [json.loads(event.data)["tweet_id"] for event in reader.of("tweet")]


def home_ids(client: APIClient) -> list[str]:
    return ids(client, limit=100)


def test_the_v1_stream_shows_what_the_timeline_shows(stream_server, make_user, api):
    reader, friend, stranger, locked, later = (make_user(username=n) for n in
                                               ("reader", "friend", "stranger", "locked", "later"))
    locked.is_private = True
    locked.save()
    as_reader, as_friend, as_stranger, as_locked, as_later = map(api, (reader, friend, stranger, locked, later))
    follow(as_reader, friend)
    follow(as_reader, locked)  # a request: pending
    stream = SseReader(f"{stream_server.url}/v1/timeline/home/stream", jwt_of(as_reader))
    assert stream.status == 200

    shown = [post(as_friend, "from a friend")]
    post(as_stranger, "from a stranger")
    post(as_locked, "locked, the reader only asked")
    shown.append(post(as_reader, "my own"))
    stream.wait(lambda s: len(s.of("tweet")) >= 2)
    assert stream.quiet_for(1.0) == []
    assert tweets_of(stream) == shown
    assert [e.id for e in stream.of("tweet")] == shown  # each event's id is its tweet's
    assert list(reversed(tweets_of(stream))) == home_ids(as_reader)

    # A deletion the reader could see; one they could not is not announced.
    assert as_friend.delete(f"/v1/tweets/{shown[0]}").status_code == 204
    stranger_tweet = post(as_stranger, "deleted unseen")
    assert as_stranger.delete(f"/v1/tweets/{stranger_tweet}").status_code == 204
    stream.wait(lambda s: s.of("delete"))
    assert stream.quiet_for(1.0) == []
    assert [json.loads(e.data) for e in stream.of("delete")] == [{"tweet_id": shown[0]}]

    # Made elsewhere, follow changes reach the open stream: an approval, a new follow, an unfollow.
    social_services.follow_request_approve(followee=locked, follower_id=reader.id)
    follow(as_reader, later)
    assert as_reader.delete(f"/v1/users/{friend.id}/follow").status_code in (200, 204)
    time.sleep(0.5)  # the follow messages travel the same channels as the tweets after them
    post(as_friend, "after the unfollow")
    now_shown = [post(as_locked, "approved"), post(as_later, "newly followed")]
    stream.wait(lambda s: len(s.of("tweet")) >= 4)
    assert stream.quiet_for(1.0) == []
    assert tweets_of(stream)[2:] == now_shown
    stream.close()


@pytest.mark.parametrize("cache_entries", [10])
def test_a_v1_stream_resumes_after_last_event_id_past_a_page_and_the_cache(tmp_path, settings, make_user, api,
                                                                            cache_entries):
    from .conftest import start_stream_server

    settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_TRIM_SLACK = cache_entries, 2
    server = start_stream_server(tmp_path, {"TIMELINE_MAX_ENTRIES": str(cache_entries), "TIMELINE_TRIM_SLACK": "2"})
    try:
        reader, author = make_user(username="reader"), make_user(username="author")
        as_reader, as_author = api(reader), api(author)
        follow(as_reader, author)
        assert home_ids(as_reader) == []  # read: the timeline is cached (and capped at 10)
        url = f"{server.url}/v1/timeline/home/stream"
        stream = SseReader(url, jwt_of(as_reader))
        first = post(as_author, "seen live")
        stream.wait(lambda s: s.of("tweet"))
        assert stream.last_event_id == first
        stream.close()

        missed = [post(as_author, f"missed {n}") for n in range(130)]  # more than a page (100) and the cache
        resumed = SseReader(url, jwt_of(as_reader), last_event_id=stream.last_event_id)
        resumed.wait(lambda s: len(s.of("tweet")) >= len(missed))
        live = post(as_author, "live again")
        try:
            resumed.wait(lambda s: len(s.of("tweet")) > len(missed))
        except AssertionError:
            raise AssertionError(server.output()) from None
        assert resumed.quiet_for(1.0) == []
        assert tweets_of(resumed) == [*missed, live]  # oldest first, each once, then live
        assert resumed.last_event_id == live

        # Resuming from the newest id replays nothing.
        again = SseReader(url, jwt_of(as_reader), last_event_id=live)
        assert again.quiet_for(1.0) == []
        again.close()
        resumed.close()
    finally:
        server.stop()


def test_a_celebritys_pulled_tweet_reaches_connected_followers_and_a_suspended_authors_do_not(
        stream_server, make_user, api, settings):
    settings.TIMELINE_CELEBRITY_THRESHOLD = 2  # two followers make a celebrity: their tweets are pulled
    reader, fan, star, other = (make_user(username=n) for n in ("reader", "fan", "star", "other"))
    as_reader = api(reader)
    for user in (reader, fan):
        follow(api(user), star)
    follow(as_reader, other)
    stream = SseReader(f"{stream_server.url}/v1/timeline/home/stream", jwt_of(as_reader))
    pulled = post(api(star), "pulled, not pushed")
    stream.wait(lambda s: s.of("tweet"))
    assert tweets_of(stream) == [pulled] == home_ids(as_reader)
    from tweets.models import Tweet

    assert Tweet.objects.get(id=pulled).pushed is False
    before = post(api(other), "before the suspension")
    stream.wait(lambda s: len(s.of("tweet")) == 2)
    social_services.user_suspend(user_id=other.id)
    # A late delivery of it (a restarted batch) after the suspension: not shown, as the timeline does not.
    tweet_delivered.send(sender=None, tweet_id=int(before), author_id=other.id, lo=0, hi=reader.id)
    assert stream.quiet_for(1.5) == []
    assert before not in home_ids(as_reader)
    stream.close()


def test_a_retried_fan_out_reaches_a_stream_once(stream_server, make_user, api):
    reader, author = make_user(username="reader"), make_user(username="author")
    as_reader, as_author = api(reader), api(author)
    follow(as_reader, author)
    stream = SseReader(f"{stream_server.url}/v1/timeline/home/stream", jwt_of(as_reader))
    tweet_id = post(as_author, "once")
    stream.wait(lambda s: s.of("tweet"))
    # The same delivery announced again, as a redelivered fan-out task does after a worker died.
    timeline_services.fanout_batch(tweet_id=int(tweet_id), author_id=author.id, lo=0, hi=None,
                                   follower_ids=[reader.id])
    tweet_delivered.send(sender=None, tweet_id=int(tweet_id), author_id=author.id, lo=0, hi=None)
    assert stream.quiet_for(1.5) == []
    assert tweets_of(stream) == [tweet_id]
    stream.close()


def test_streams_refuse_what_the_api_refuses(stream_server, make_user, api):
    user = make_user(username="someone")
    mastodon, v1 = f"{stream_server.url}/api/v1/streaming/user", f"{stream_server.url}/v1/timeline/home/stream"
    assert requests.get(f"{stream_server.url}/api/v1/streaming/health", timeout=5).text == "OK"
    assert requests.get(mastodon, timeout=5).status_code == 401
    assert requests.get(mastodon, headers={"Authorization": "Bearer nonsense"}, timeout=5).status_code == 401
    assert requests.get(v1, headers={"Authorization": "Bearer a.b.c"}, timeout=5).status_code == 401
    write_only = oauth_token(user, "write")
    r = requests.get(mastodon, headers={"Authorization": f"Bearer {write_only}"}, timeout=5)
    assert r.status_code == 403 and "error" in r.json()
    r = requests.get(v1, headers={"Authorization": f"Bearer {write_only}"}, timeout=5)
    assert r.status_code == 401  # /v1 takes its own JWTs only
    assert requests.post(mastodon, timeout=5).status_code == 405
    head = requests.head(mastodon, headers={"Authorization": f"Bearer {oauth_token(user, 'read')}"}, timeout=5)
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    assert requests.get(f"{stream_server.url}/api/v1/streaming/public", timeout=5).status_code == 404
    # The token in the query, as a browser's EventSource must send it.
    read = oauth_token(user, "read")
    ok = SseReader(mastodon, "", params={"access_token": read})
    assert ok.status == 200
    ok.close()


def test_a_revoked_token_or_a_suspended_user_ends_the_stream_within_seconds(tmp_path, make_user, api):
    from .conftest import start_stream_server

    # The periodic sweep is set far off: what ends these streams is the change being announced.
    stream_server = start_stream_server(tmp_path, {"STREAM_RECHECK_SECONDS": "300"})
    user, other = make_user(username="revoked"), make_user(username="suspended")
    token = oauth_token(user, "read")
    mastodon = SseReader(f"{stream_server.url}/api/v1/streaming/user", token)
    v1 = SseReader(f"{stream_server.url}/v1/timeline/home/stream", jwt_of(api(other)))
    app = APIClient().post("/api/v1/apps", {"client_name": "x", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}).json()
    assert mastodon.ended.is_set() is False and v1.ended.is_set() is False
    from oauth2_provider.models import AccessToken

    AccessToken.objects.filter(user=user).delete()  # revoked, as /oauth/revoke deletes it
    social_services.user_suspend(user_id=other.id)
    started = time.monotonic()
    assert mastodon.ended.wait(10) and v1.ended.wait(10)
    assert time.monotonic() - started < 10
    assert app  # an app token alone opens nothing:
    r = requests.get(f"{stream_server.url}/api/v1/streaming/user", headers={"Authorization": f"Bearer {token}"},
                     timeout=5)
    assert r.status_code == 401
    stream_server.stop()


def test_the_websocket_stream_frames_events_as_mastodon_does(stream_server, make_user, api):
    reader, author = make_user(username="reader"), make_user(username="author")
    as_author = api(author)
    follow(api(reader), author)
    token = oauth_token(reader, "read")
    with connect(f"{stream_server.ws_url}/api/v1/streaming?stream=user&access_token={token}") as ws:
        tweet_id = post(as_author, "over a websocket")
        frame = json.loads(ws.recv(timeout=10))
        assert frame["stream"] == ["user"] and frame["event"] == "update"
        status = json.loads(frame["payload"])
        assert status["id"] == tweet_id and status["content"] == "<p>over a websocket</p>"
        assert status["account"]["username"] == "author"
        assert as_author.delete(f"/v1/tweets/{tweet_id}").status_code == 204
        assert json.loads(ws.recv(timeout=10)) == {"stream": ["user"], "event": "delete", "payload": tweet_id}

        ws.send(json.dumps({"type": "unsubscribe", "stream": "user"}))
        ws.send(json.dumps({"type": "subscribe", "stream": "public"}))
        assert json.loads(ws.recv(timeout=10)) == {"error": "Unknown stream type", "status": 400}
        post(as_author, "while unsubscribed")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.5)
        ws.send(json.dumps({"type": "subscribe", "stream": "user"}))
        time.sleep(0.3)
        again = post(as_author, "subscribed again")
        assert json.loads(json.loads(ws.recv(timeout=10))["payload"])["id"] == again

    # The token as the subprotocol (browsers cannot set WebSocket headers), subscribing on the open socket.
    with connect(f"{stream_server.ws_url}/api/v1/streaming", subprotocols=[token]) as ws:
        assert ws.subprotocol == token
        ws.send(json.dumps({"type": "subscribe", "stream": "user"}))
        time.sleep(0.3)
        tweet_id = post(as_author, "subprotocol")
        assert json.loads(json.loads(ws.recv(timeout=10))["payload"])["id"] == tweet_id

    with pytest.raises(InvalidStatus) as refused:
        connect(f"{stream_server.ws_url}/api/v1/streaming?stream=user&access_token=nonsense")
    assert refused.value.response.status_code == 401


def test_the_instance_documents_point_at_the_stream(settings, client):
    settings.STREAMING_API_URL = ""
    settings.STREAM_PORT = 8123
    assert client.get("/api/v1/instance").json()["urls"]["streaming_api"] == "ws://testserver:8123"
    settings.STREAMING_API_URL = "wss://stream.example.com/"
    assert client.get("/api/v2/instance").json()["configuration"]["urls"]["streaming"] == \
        "wss://stream.example.com"


def test_mastodon_py_stream_user_receives_updates_and_deletes(tmp_path, live_server, settings, make_user):
    from mastodon import Mastodon, StreamListener

    from .conftest import start_stream_server

    stream_server = start_stream_server(tmp_path, {"SITE_URL": live_server.url, "STREAM_HEARTBEAT_SECONDS": "1"})
    settings.STREAMING_API_URL = stream_server.ws_url  # where Mastodon.py finds it: /api/v1/instance
    for name in ("reader", "author"):
        make_user(username=name)
    clients = {}
    for name in ("reader", "author"):
        client_id, secret = Mastodon.create_app("stream tests", scopes=["read", "write", "follow"],
                                                api_base_url=live_server.url)
        clients[name] = Mastodon(client_id=client_id, client_secret=secret, api_base_url=live_server.url)
        clients[name].log_in(username=name, password=PASSWORD, scopes=["read", "write", "follow"], allow_http=True)
    reader, author = clients["reader"], clients["author"]
    reader.account_follow(reader.account_lookup("author").id)

    class Listener(StreamListener):
        def __init__(self):
            self.updates, self.deletes = [], []

        def on_update(self, status):
            self.updates.append(status)

        def on_delete(self, status_id):
            self.deletes.append(status_id)

    listener = Listener()
    handle = reader.stream_user(listener, run_async=True)
    try:
        wait_for(handle.is_receiving, 10, what="Mastodon.py's stream to open")
        status = author.status_post("streamed to Mastodon.py")
        wait_for(lambda: listener.updates, 10, what="the update")
        assert listener.updates[0].id == status.id and listener.updates[0].account.username == "author"
        assert listener.updates[0].url.startswith(live_server.url)  # links to the API's host, not the stream's
        author.status_delete(status.id)
        wait_for(lambda: listener.deletes, 10, what="the delete")
        assert [str(d) for d in listener.deletes] == [str(status.id)]
    finally:
        handle.close()
        stream_server.stop()


def test_idle_streams_get_heartbeats_within_the_period(tmp_path, make_user, api):
    from .conftest import start_stream_server

    server = start_stream_server(tmp_path, {"STREAM_HEARTBEAT_SECONDS": "2"})
    try:
        token = jwt_of(api(make_user(username="idle")))
        v1 = SseReader(f"{server.url}/v1/timeline/home/stream", token)
        mastodon = SseReader(f"{server.url}/api/v1/streaming/user", token)
        v1.wait(lambda s: s.comments.count(":") >= 2, 8, what="two heartbeats")
        mastodon.wait(lambda s: s.comments.count(":thump") >= 2, 8, what="two heartbeats")
        assert v1.events == [] and mastodon.events == []
        v1.close()
        mastodon.close()
    finally:
        server.stop()
