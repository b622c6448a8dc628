"""Mastodon.py itself, unmodified, against a live server: the client the issue names.

The server is pytest-django's ``live_server`` (a thread serving the test
database); fan-out and follow backfills run in a real Celery worker consuming
real broker messages; media go to the session's S3 endpoint (moto over HTTP).
The home timeline's cache is cut to 10 entries, so scrolling to the end with
``fetch_next`` runs well past it into PostgreSQL.
"""
import pytest
import requests
from django.test import override_settings
from mastodon import Mastodon, MastodonIllegalArgumentError, MastodonNotFoundError, MastodonUnauthorizedError

from tests.factories import PASSWORD
from tests.helpers import cached, wait_for
from timelines import store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SCOPES = ["read", "write", "follow", "push"]
# A PNG's signature and a few bytes: storage checks the declared type and size, not the pixels.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _register(base: str, username: str) -> None:
    """Sign up through /v1, as any user of the product: the same account on the Mastodon API."""
    r = requests.post(f"{base}/v1/auth/register", json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 201, r.text


def _client(base: str, username: str) -> Mastodon:
    client_id, client_secret = Mastodon.create_app("timeline tests", scopes=SCOPES, api_base_url=base)
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base)
    # Mastodon.py finds the token endpoint in /.well-known/oauth-authorization-server and
    # takes a plain-http one (this live server's) only when told to, as for any server.
    client.log_in(username=username, password=PASSWORD, scopes=SCOPES, allow_http=True)
    return client


def _ids(page) -> list[str]:
    return [str(status.id) for status in page]


@override_settings(TIMELINE_MAX_ENTRIES=10, TIMELINE_TRIM_SLACK=2)
def test_mastodon_py_signs_in_posts_follows_scrolls_marks_deletes_and_revokes(live_server, celery_worker, redis):
    base = live_server.url
    for name in ("reader", "author", "hermit"):
        _register(base, name)
    reader, author, hermit = (_client(base, name) for name in ("reader", "author", "hermit"))
    assert reader.account_verify_credentials().username == "reader"
    reader_id = str(reader.account_verify_credentials().id)
    author_account = reader.account_lookup("author")

    # Follow (the reader's timeline is read first, so the worker keeps it cached).
    assert reader.timeline_home() == []
    relationship = reader.account_follow(author_account.id)
    assert relationship.following and not relationship.requested

    # Post: an image first, then more text than the cache holds.
    media = author.media_post(PNG, mime_type="image/png")
    first = author.status_post("the very first, with a picture", media_ids=[media])
    assert first.media_attachments[0].type == "image"
    assert requests.get(first.media_attachments[0].url, timeout=10).content == PNG
    posted = [str(first.id)]
    for n in range(24):
        posted.append(str(author.status_post(f"number {n} #tagged").id))
    again = author.status_post("number 23 #tagged", idempotency_key="retry-me")
    assert str(author.status_post("number 23 #tagged", idempotency_key="retry-me").id) == str(again.id)
    posted.append(str(again.id))
    newest_first = posted[::-1]
    wait_for(lambda: cached(store.timeline_key(int(reader_id)))[:1] == [newest_first[0]],
             what="the worker to deliver the author's tweets to the reader")
    assert len(cached(store.timeline_key(int(reader_id)))) <= 12 < len(posted)  # most lie past the cache

    # Scroll to the very end with the Link headers: every tweet once, newest first.
    page = reader.timeline_home(limit=4)
    top = page
    seen = []
    while page:
        seen += _ids(page)
        page = reader.fetch_next(page)
    assert seen == newest_first
    assert reader.status(first.id).media_attachments[0].url == first.media_attachments[0].url

    # Pull newer with fetch_previous: the pages just above, without a gap.
    newer = [str(author.status_post(f"later {n}").id) for n in range(7)]
    wait_for(lambda: cached(store.timeline_key(int(reader_id)))[:1] == [newer[-1]],
             what="the worker to deliver the later tweets")
    pulled = []
    page = reader.fetch_previous(top)
    while page:
        pulled = _ids(page) + pulled
        page = reader.fetch_previous(page)
    assert pulled == newer[::-1]
    assert _ids(reader.timeline_home(since_id=newest_first[0], limit=3)) == newer[::-1][:3]

    # The read position, as another device would find it.
    reader.markers_set("home", newer[-1])
    marker = _client(base, "reader").markers_get("home")["home"]
    assert str(marker.last_read_id) == newer[-1]

    # A private account: a request, approved, then an unfollow.
    hermit.account_update_credentials(locked=True)
    hermit_account = reader.account_lookup("hermit")
    assert hermit_account.locked
    assert reader.account_follow(hermit_account.id).requested
    assert [str(a.id) for a in hermit.follow_requests()] == [reader_id]
    assert hermit.follow_request_authorize(reader_id).followed_by
    assert reader.account_relationships(hermit_account.id)[0].following
    assert not reader.account_unfollow(hermit_account.id).following

    # Delete: gone for the reader.
    author.status_delete(newer[-1])
    with pytest.raises(MastodonNotFoundError):
        reader.status(newer[-1])
    assert newer[-1] not in _ids(reader.timeline_home())

    # Revoke: the token stops working.
    token = reader.access_token
    reader.revoke_access_token(allow_http=True)
    with pytest.raises(MastodonUnauthorizedError):
        Mastodon(access_token=token, api_base_url=base).account_verify_credentials()


def test_a_wrong_password_is_refused(live_server):
    base = live_server.url
    _register(base, "guarded")
    client_id, client_secret = Mastodon.create_app("timeline tests", scopes=SCOPES, api_base_url=base)
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base)
    with pytest.raises(MastodonIllegalArgumentError, match="invalid_grant"):
        client.log_in(username="guarded", password="not the password", scopes=SCOPES, allow_http=True)
