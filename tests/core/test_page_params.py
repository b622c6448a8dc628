"""``PageParams.parse``: its shortcut for plain queries answers exactly what the serializer would."""
from urllib.parse import urlencode

from django.http import QueryDict
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from core.pagination import PageParams
from timelines.apis import TimelineParams

_VALUES = st.one_of(
    st.integers(min_value=-5, max_value=150).map(str),
    st.integers(min_value=(1 << 63) - 3, max_value=(1 << 63) + 3).map(str),
    st.sampled_from(["", "0", "020", " 20", "20 ", "20.0", "1e2", "٣", "+5", "-0", "abc"]),
)
_QUERIES = st.lists(st.tuples(st.sampled_from(["limit", "cursor", "since", "other"]), _VALUES), max_size=4)


def _serializer_answer(params: type[PageParams], query: QueryDict):
    serializer = params(data=query)
    return dict(serializer.validated_data) if serializer.is_valid() else None


@settings(max_examples=400, deadline=None)
@given(pairs=_QUERIES, params=st.sampled_from([PageParams, TimelineParams]))
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
