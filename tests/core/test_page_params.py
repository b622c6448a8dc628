"""``PageParams.parse``: its shortcut for plain queries answers exactly what the serializer would,
for ``/v1``'s page parameters and for Mastodon's, which derive from them."""
from urllib.parse import urlencode

from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from core.pagination import PageParams
from mastoapi.serializers import PageParams as MastodonPageParams
from timelines.apis import TimelineParams

_VALUES = st.one_of(
    st.integers(min_value=-5, max_value=150).map(str),
    st.integers(min_value=(1 << 63) - 3, max_value=(1 << 63) + 3).map(str),
    st.sampled_from(["", "0", "020", " 20", "20 ", "20.0", "1e2", "٣", "+5", "-0", "abc"]),
)
_NAMES = st.sampled_from(["limit", "cursor", "since", "max_id", "min_id", "since_id", "other"])
_QUERIES = st.lists(st.tuples(_NAMES, _VALUES), max_size=4)


def _serializer_answer(params: type[PageParams], query: QueryDict):
    serializer = params(data=query)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@settings(max_examples=400, deadline=None)
@given(pairs=_QUERIES, params=st.sampled_from([PageParams, TimelineParams, MastodonPageParams]))
def test_parse_answers_as_the_serializer_does(pairs, params):
    query = QueryDict(urlencode(pairs))
    expected = _serializer_answer(params, query)
    plain = params._plain(query)
    assert plain is None or plain == expected  # the shortcut never answers otherwise
    if expected is None:
        try:
            params.parse(query)
        except serializers.ValidationError:
            pass
        else:
            raise AssertionError(f"{query.urlencode()!r} was accepted; the serializer refuses it")
    else:
        assert params.parse(query) == expected


def test_a_plain_query_takes_the_shortcut():
    assert TimelineParams._plain(QueryDict("limit=100&cursor=9223372036854775807")) == {
        "limit": 100, "cursor": (1 << 63) - 1}
    assert TimelineParams._plain(QueryDict("")) == {"limit": 20}
    assert TimelineParams._plain(QueryDict("limit=7&since=3&cursor=5")) is None  # the serializer's 400


def test_mastodon_clamps_the_limit_where_v1_refuses_it():
    assert MastodonPageParams.page(QueryDict("limit=500&max_id=7"), default=20, maximum=40) == {
        "limit": 40, "max_id": 7}
    assert MastodonPageParams.page(QueryDict("limit=-3"), default=20, maximum=40)["limit"] == 3
    assert MastodonPageParams.page(QueryDict("limit=0"), default=20, maximum=40)["limit"] == 1
    assert MastodonPageParams.page(QueryDict(""), default=40, maximum=80) == {"limit": 40}
    assert "cursor" not in MastodonPageParams().fields
    try:
        PageParams.parse(QueryDict("limit=500"))
    except serializers.ValidationError:
        pass
    else:
        raise AssertionError("/v1 took a limit over 100")
