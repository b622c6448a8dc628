"""The tweet's one shape, ``tweets.objects.TweetEntry``: its cached form reads back as it was,
its public form is what the OpenAPI component describes, and the Mastodon Status links
exactly the entities ``tweets.text`` finds."""
import orjson
import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st

from core.dates import iso_utc, iso_utc_from_unix
from mastoapi import entities
from social.models import User
from tweets import text
from tweets.objects import Author, Media, TweetEntry, public_json, unpacked

# orjson, like JSON, refuses lone surrogates: every other code point may be in a tweet.
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_entries = st.builds(
    TweetEntry,
    tweet_id=st.integers(min_value=1, max_value=(1 << 63) - 1),
    author=st.builds(Author, user_id=st.integers(min_value=1, max_value=(1 << 63) - 1), username=_text,
                     display_name=_text, active=st.booleans(), private=st.booleans()),
    content=_text,
    media=st.lists(st.builds(Media, media_id=st.integers(min_value=1).map(str), key=_text, content_type=_text),
                   max_size=4).map(tuple),
    mentions=st.lists(_text, max_size=5).map(tuple),
    hashtags=st.lists(_text, max_size=5).map(tuple),
)


@given(_entries)
def test_an_entry_packs_and_unpacks_to_the_same_entry(entry):
    assert TweetEntry.unpack(entry.tweet_id, entry.pack()) == entry


@given(_entries)
def test_the_public_object_is_the_entrys_public_fields_with_the_time_of_its_id(entry):
    public = entry.to_public()
    assert public["tweet_id"] == str(entry.tweet_id)
    assert public["author"] == {"user_id": str(entry.author.user_id), "username": entry.author.username,
                                "display_name": entry.author.display_name}
    assert public["created_at"] == iso_utc(entry.created_at)
    assert public["timestamp"] == int(entry.created_at.timestamp())
    assert [m["media_id"] for m in public["media"]] == [m.media_id for m in entry.media]


@given(_entries)
def test_the_remembered_entry_and_encoded_object_are_the_entrys_own(entry):
    raw = entry.pack()
    assert unpacked(entry.tweet_id, raw) == entry
    assert unpacked(entry.tweet_id, raw) is unpacked(entry.tweet_id, raw)
    for _ in range(2):  # encoded, then remembered
        assert orjson.loads(orjson.dumps([public_json(entry)])) == [orjson.loads(orjson.dumps(entry.to_public()))]


def _media_entry(*, private: bool) -> TweetEntry:
    return TweetEntry(tweet_id=1 << 40, author=Author(user_id=7, username="ann", display_name="Ann", active=True,
                                                      private=private),
                      content="hi", media=(Media(media_id="3", key="7/a.png", content_type="image/png"),))


def _url(fragment: orjson.Fragment) -> str:
    return orjson.loads(orjson.dumps(fragment))["media"][0]["url"]


def test_a_remembered_public_object_follows_a_new_media_cdn_url(settings):
    entry = _media_entry(private=False)
    settings.MEDIA_CDN_URL = "https://cdn-one.example"
    assert _url(public_json(entry)) == "https://cdn-one.example/public/7/a.png"
    settings.MEDIA_CDN_URL = "https://cdn-two.example"
    assert _url(public_json(entry)) == "https://cdn-two.example/public/7/a.png"


def test_a_private_authors_media_are_signed_at_every_showing(settings, monkeypatch):
    settings.MEDIA_CDN_URL = "https://cdn.example"
    settings.MEDIA_PRIVATE_URL_SECONDS = 300
    entry = _media_entry(private=True)
    monkeypatch.setattr("media.storage.time.time", lambda: 1_700_000_000)
    first = _url(public_json(entry))
    monkeypatch.setattr("media.storage.time.time", lambda: 1_700_000_000 + 3600)
    later = _url(public_json(entry))
    assert first.startswith("https://cdn.example/") and "X-Amz-Signature=" in first
    assert later != first  # signed again, an hour later: not a remembered URL that has expired


def test_an_entry_in_another_layout_reads_as_a_miss():
    assert TweetEntry.unpack(1, b'[1,5,"ann","Ann",1,"hi"]') is None
    assert TweetEntry.unpack(1, b'{"tweet_id":"1"}') is None


def _properties(openapi: dict, name: str) -> dict:
    return openapi["components"]["schemas"][name]["properties"]


@pytest.mark.django_db
def test_the_openapi_component_lists_exactly_the_public_objects_fields():
    openapi = SchemaGenerator().get_schema(request=None, public=True)
    entry = TweetEntry(tweet_id=1 << 40, author=Author(user_id=7, username="ann", display_name="Ann", active=True,
                                                       private=False),
                       content="hi", media=(Media(media_id="3", key="7/a.png", content_type="image/png"),),
                       mentions=("bob",), hashtags=("tag",))
    public = entry.to_public()
    tweet = _properties(openapi, "Tweet")
    assert list(tweet) == list(public)
    assert tweet["author"] == {"$ref": "#/components/schemas/TweetAuthor"}
    assert list(_properties(openapi, "TweetAuthor")) == list(public["author"])
    assert tweet["media"]["items"] == {"$ref": "#/components/schemas/TweetMedia"}
    assert list(_properties(openapi, "TweetMedia")) == list(public["media"][0])
    assert tweet["created_at"] == {"type": "string", "format": "date-time"}
    assert _properties(openapi, "TweetMedia")["url"] == {"type": "string", "format": "uri"}
    assert tweet["timestamp"] == {"type": "integer"}
    assert set(openapi["components"]["schemas"]["Tweet"]["required"]) == set(public)


def test_the_two_time_formats():
    assert iso_utc_from_unix(1_700_000_000) == "2023-11-14T22:13:20Z"  # /v1: a whole second has no fraction
    assert iso_utc_from_unix(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"
    assert iso_utc_from_unix(1_700_000_000, timespec="milliseconds") == "2023-11-14T22:13:20.000Z"  # Mastodon


def test_entities_come_with_their_offsets_in_text_order():
    content = "RT @bob: see #Tag at https://example.com/a and x!@carol"
    found = text.entities_with_indices(content)
    assert [(e.kind, e.value, content[e.start:e.end]) for e in found] == [
        ("mention", "bob", "@bob"),
        ("hashtag", "Tag", "#Tag"),
        ("url", "https://example.com/a", "https://example.com/a"),
    ]  # "x!@carol" is no mention to twitter-text
    assert [e.value for e in found if e.kind == "mention"] == text.extract_mentions(content)
    assert [e.value for e in found if e.kind == "hashtag"] == text.extract_hashtags(content)


def test_the_status_links_only_what_tweets_text_calls_a_mention():
    bob = User(id=2, username="bob")
    html = entities.content_html("@bob hi, and again !@bob", base="https://h", mentioned={"bob": bob}, tags=set())
    assert html.count('class="u-url mention"') == 1
    assert html.endswith("and again !@bob</p>")
