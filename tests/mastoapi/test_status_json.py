"""The encoded Statuses a page shows (``mastoapi.entities.status_json``) are the Statuses
``status`` builds from the same parts, whatever this process remembers: a change to any part
(the author's entry, a named user, the base, the media's URL) shows at once."""
from datetime import UTC, datetime

import orjson

from mastoapi.entities import status, status_json
from social.cache import CachedUser
from tweets.objects import Author, Media, TweetEntry


def _user(user_id: int, username: str, *, followers: int = 0, private: bool = False) -> CachedUser:
    return CachedUser(user_id=user_id, username=username, display_name=username.title(), active=True,
                      private=private, joined=datetime(2026, 1, 1, tzinfo=UTC), followers=followers, following=0,
                      version=1, token_version=0)


def _tweet(author: CachedUser, content: str, *, mentions=(), media=()) -> TweetEntry:
    return TweetEntry(tweet_id=(1 << 58) + author.user_id, content=content, mentions=mentions, media=media,
                      author=Author(user_id=author.user_id, username=author.username,
                                    display_name=author.display_name, active=True, private=author.private))


def _same(tweet, author, base, mentioned) -> dict:
    built = orjson.loads(orjson.dumps(status(tweet, author=author, base=base, mentioned=mentioned)))
    for _ in range(2):  # encoded, then remembered
        encoded = orjson.loads(orjson.dumps([status_json(tweet, author=author, base=base, mentioned=mentioned)]))
        assert encoded == [built]
    return built


def test_every_part_a_status_is_made_of_shows_in_the_remembered_one():
    author, ann, bob = _user(1, "carol"), _user(2, "ann"), _user(3, "bob")
    # bob is linked by the text but is not among the tweet's mentions: another tweet on the page may name him.
    tweet = _tweet(author, "hi @ann and @bob #tag", mentions=("ann",))
    base = "https://one.example"
    plain = _same(tweet, author, base, {})
    assert plain["mentions"] == [] and "/@ann" not in plain["content"]
    both = _same(tweet, author, base, {"ann": ann, "bob": bob})
    assert [m["username"] for m in both["mentions"]] == ["ann"] and "/@bob" in both["content"]
    renamed = _same(tweet, author, base, {"ann": _user(2, "anne"), "bob": bob})
    assert renamed["mentions"][0]["username"] == "anne"
    followed = _same(tweet, _user(1, "carol", followers=5), base, {"ann": ann})
    assert followed["account"]["followers_count"] == 5
    moved = _same(tweet, author, "https://two.example", {"ann": ann})
    assert moved["url"].startswith("https://two.example/")


def test_public_media_follow_the_media_cdn_url_and_private_media_are_signed_at_every_showing(settings,
                                                                                              monkeypatch):
    medium = (Media(media_id="9", key="1/a.png", content_type="image/png"),)
    public, private = _user(1, "carol"), _user(4, "dan", private=True)
    base = "https://one.example"
    settings.MEDIA_CDN_URL = "https://cdn-one.example"
    shown = _same(_tweet(public, "look", media=medium), public, base, {})
    assert shown["media_attachments"][0]["url"] == "https://cdn-one.example/public/1/a.png"
    settings.MEDIA_CDN_URL = "https://cdn-two.example"
    shown = _same(_tweet(public, "look", media=medium), public, base, {})
    assert shown["media_attachments"][0]["url"] == "https://cdn-two.example/public/1/a.png"
    settings.MEDIA_PRIVATE_URL_SECONDS = 300
    tweet = _tweet(private, "look", media=medium)
    monkeypatch.setattr("media.storage.time.time", lambda: 1_700_000_000)
    first = orjson.loads(orjson.dumps(status_json(tweet, author=private, base=base, mentioned={})))
    monkeypatch.setattr("media.storage.time.time", lambda: 1_700_000_000 + 3600)
    later = orjson.loads(orjson.dumps(status_json(tweet, author=private, base=base, mentioned={})))
    assert first["media_attachments"][0]["url"] != later["media_attachments"][0]["url"]
