"""Mastodon's request parameters, read by plain DRF serializers.

Mastodon (Rails) takes the same parameters as a form, a multipart body, a query
string or JSON. A form spells an array as repeated ``name[]`` fields and a hash
as ``name[key]`` fields; JSON spells them as arrays and objects. ``plain``
turns the form spelling into the JSON one, so each view's serializer is
written once, for lists and dicts, and reads every spelling alike. A view reads
its parameters with ``Params.of(request.data)`` (or the query), and an invalid
one is a ``ValidationError``: a 422 ``{"error": "Validation failed: ..."}``.
"""
import re
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from core import pagination
from core.fields import IdField

# Rails' word for a missing or empty required parameter.
CANT_BE_BLANK: dict[str, Any] = {"required": "can't be blank", "blank": "can't be blank", "null": "can't be blank"}

# ``name``, then any number of ``[key]`` or a final ``[]``.
_KEY = re.compile(r"(?P<name>[^\[\]]+)(?P<path>(?:\[[^\[\]]*\])*)")


def plain(data):
    """``data`` with a form's ``name[]`` fields as lists and ``name[key]`` fields as dicts
    (a plain field repeated is its last value, as Rails reads it). A JSON body is
    already plain and is answered as it is."""
    if not hasattr(data, "lists"):
        return data
    out: dict = {}
    for key, values in data.lists():
        match = _KEY.fullmatch(key)
        if match is None:
            out[key] = values[-1]
            continue
        path = [match["name"], *re.findall(r"\[([^\[\]]*)\]", match["path"])]
        if "" in path[:-1]:
            raise serializers.ValidationError({key: ["arrays of hashes are not taken here"]})
        if path[-1] == "":
            path, value = path[:-1], list(values)
        else:
            value = values[-1]
        _put(out, path, value, key=key)
    return out


def _put(out: dict, path: list[str], value, *, key: str) -> None:
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise serializers.ValidationError({key: ["is given both as a value and as a hash"]})
    if path[-1] in node:
        raise serializers.ValidationError({key: ["is given twice, in two forms"]})
    node[path[-1]] = value


class OneOrMany(serializers.ListField):
    """A list parameter, which Mastodon also takes as one value (``id=1`` for ``id[]=1``)."""

    def to_internal_value(self, data):
        if isinstance(data, str | int | Mapping):
            data = [data]
        return super().to_internal_value(data)


class Params(serializers.Serializer):
    """The parameters of one Mastodon view."""

    @classmethod
    def of(cls, data) -> dict:
        """The validated parameters of ``data`` (a QueryDict or a parsed JSON body)."""
        serializer = cls(data=plain(data))
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


# Mastodon's page sizes, the default and the most a ``limit`` may ask for: statuses
# and accounts; and the most relationships one request asks about.
STATUSES_LIMIT, STATUSES_LIMIT_MAX = 20, 40
ACCOUNTS_LIMIT, ACCOUNTS_LIMIT_MAX = 40, 80
RELATIONSHIPS_MAX = 40


class PageParams(pagination.PageParams):
    """Mastodon's page parameters: ``max_id``, ``since_id``, ``min_id`` and ``limit``, which
    Mastodon clamps (to 1 at least and the view's maximum at most) rather than refuses."""

    cursor = None  # type: ignore[assignment]  # DRF drops an inherited field set to None
    max_id = IdField(required=False)
    since_id = IdField(required=False)
    min_id = IdField(required=False)
    limit = serializers.IntegerField(required=False)

    @classmethod
    def page(cls, query, *, default: int, maximum: int) -> dict:
        params = dict(cls.parse(query))
        params["limit"] = min(max(abs(params.get("limit", default)), 1), maximum)
        return params


class Words(serializers.ListField):
    """Words separated by spaces or newlines (``"read write"``), or a list of them, as
    Mastodon takes ``scopes`` and ``redirect_uris``."""

    child = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        return [word for value in super().to_internal_value(data) for word in value.split()]
