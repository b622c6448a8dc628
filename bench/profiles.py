"""Where a post's time goes, from a py-spy profile (raw, collapsed stacks) of the web workers under POST load.

Each sample is put in the first group of :data:`RULES` that one of its frames names, whatever its depth: a stack
inside the Celery publish that runs on commit is the broker's, not the commit's; a Redis call made while minting
an id is the id's; a query a serializer makes while validating is validation's; psycopg waiting for the COMMIT is
the commit's, not generic SQL's. A stack whose frames name no group is "the rest" (authentication, middleware,
the framework, rendering). Samples outside a request (the worker's own threads) are left out.
"""
from __future__ import annotations

import re

# (group, pattern on one frame), in priority order: the first group any frame of a stack names decides.
RULES = [
    ("broker publish (Celery)", re.compile(r"\((celery|kombu|amqp|vine)/")),
    ("id minting (tweets/snowflake.py)", re.compile(r"\(tweets/snowflake\.py")),
    ("twitter-text parsing (tweets/text.py)", re.compile(r"\((tweets/text\.py|twitter_text/)")),
    ("validation (serializers)", re.compile(r"\((rest_framework/serializers|rest_framework/fields|"
                                           r"tweets/serializers|media/)")),
    ("commit (and leaving the transaction)", re.compile(r"(commit|Atomic\.__exit__) \((django/db|psycopg)/")),
    ("SQL (the transaction's statements, other queries)", re.compile(r"\((django/db|psycopg)/")),
]
REST = "the rest (auth, middleware, framework, rendering)"
# A sample belongs to a request when one of its frames is the WSGI handler's.
REQUEST = re.compile(r"\((django/core/handlers/wsgi\.py|django/core/handlers/base\.py)")


def group_of(frames: list[str]) -> str:
    for name, pattern in RULES:
        if any(pattern.search(frame) for frame in frames):
            return name
    return REST


def post_breakdown(raw: str) -> dict:
    """The share of a request's samples in each group (and the samples counted), from py-spy's raw output."""
    counts: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if not any(REQUEST.search(f) for f in frames):
            continue
        group = group_of(frames)
        counts[group] = counts.get(group, 0) + int(count)
        total += int(count)
    order = [name for name, _ in RULES] + [REST]
    groups = [{"group": name, "samples": counts.get(name, 0), "share": round(counts.get(name, 0) / total, 4)
               if total else 0.0} for name in order]
    return {"samples": total, "groups": groups}
