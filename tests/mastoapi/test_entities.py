"""Every entity and error the Mastodon API answers has the shape Mastodon's documentation gives it.

``mastodon_entities.json`` is that documentation in machine-readable form
(``scripts/mastodon_entities.py`` reads it from ``mastodon/documentation``, at
the commit the file names): for each entity, each attribute's type, whether it
may be null and whether it may be left out. An attribute added after the
Mastodon version this server claims to be (``MASTODON_VERSION``) need not be
there, but is typed if it is. The entities are fetched over HTTP, as a client
gets them.
"""
import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import PASSWORD
from tests.helpers import post

from .test_statuses import _upload

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = json.loads((Path(__file__).parent / "mastodon_entities.json").read_text())["entities"]
_PYTHON = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "hash": dict, "array": list}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.match(r"\d+\.\d+\.\d+", text).group(0).split("."))


CLAIMED = _version(settings.MASTODON_VERSION)


def _attributes(entity: str) -> dict[str, dict]:
    """The documented attributes of ``entity`` (a CredentialX has X's as well)."""
    page, _, section = entity.partition("#")
    if section.startswith("Credential"):
        return {**DOCS[page], **DOCS[entity]}
    return DOCS[entity]


def shape_errors(value, entity: str, where: str = "") -> list[str]:
    """How ``value`` differs from the documented ``entity``: [] if it does not."""
    if not isinstance(value, dict):
        return [f"{where or entity}: not a hash"]
    errors = []
    for name, doc in _attributes(entity).items():
        if "removed" in doc and _version(doc["removed"]) <= CLAIMED:
            continue
        required = doc["required"] and _version(doc.get("added", "0.0.0")) <= CLAIMED
        path = [name.split("[")[0], *re.findall(r"\[([^\]]*)\]", name)]
        parent = value
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue  # under an optional or null parent that is not there
        label = f"{where}{name}"
        if path[-1] not in parent:
            if required:
                errors.append(f"{label}: missing")
            continue
        item = parent[path[-1]]
        if item is None:
            if not doc["nullable"]:
                errors.append(f"{label}: null, but not nullable")
            continue
        kind = doc.get("type")
        if kind and (not isinstance(item, _PYTHON[kind]) or (kind in ("integer", "number")
                                                             and isinstance(item, bool))):
            errors.append(f"{label}: {type(item).__name__}, not {kind}")
            continue
        ref = doc.get("ref")
        if ref in DOCS:
            for i, element in enumerate(item if kind == "array" else [item]):
                errors += shape_errors(element, ref, f"{label}{f'[{i}]' if kind == 'array' else ''}.")
    return errors




def test_the_checker_refuses_what_the_docs_refuse():
    account = {"id": "1", "username": "a"}
    assert "acct: missing" in "; ".join(shape_errors(account, "Account"))
    assert shape_errors({"error": 404}, "Error") == ["error: int, not string"]
    assert shape_errors({"error": None}, "Error") == ["error: null, but not nullable"]
    assert shape_errors({"error": "x"}, "Error") == []
    assert shape_errors({"access_token": "t", "token_type": "Bearer", "scope": "read", "created_at": True},
                        "Token") == ["created_at: bool, not number"]


def test_every_entity_has_its_documented_shape(masto, make_user, api, app_client, anon):
    problems: list[str] = []

    def check(value, entity: str) -> None:
        problems.extend(f"{entity}: {error}" for error in shape_errors(value, entity))

    user, friend = make_user(display_name="Ada"), make_user(is_private=True)
    client = masto(user, scope="read write follow push")
    other = masto(friend)

    r = APIClient().post("/api/v1/apps", {"client_name": "shapes", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"})
    check(r.json(), "Application#CredentialApplication")
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"],
                                          "username": user.username, "password": PASSWORD, "scope": "read"})
    check(r.json(), "Token")
    check(client.get("/api/v1/apps/verify_credentials").json(), "Application")

    check(anon.get("/api/v1/instance").json(), "V1_Instance")
    check(anon.get("/api/v2/instance").json(), "Instance")

    check(client.get("/api/v1/accounts/verify_credentials").json(), "Account#CredentialAccount")
    r = client.patch("/api/v1/accounts/update_credentials", {"display_name": "Ada L"}, format="json")
    check(r.json(), "Account#CredentialAccount")
    check(client.get(f"/api/v1/accounts/{friend.id}").json(), "Account")
    check(client.get("/api/v1/accounts/lookup", {"acct": friend.username}).json(), "Account")

    check(client.post(f"/api/v1/accounts/{friend.id}/follow").json(), "Relationship")
    check(other.get("/api/v1/follow_requests").json()[0], "Account")
    check(other.post(f"/api/v1/follow_requests/{user.id}/authorize").json(), "Relationship")
    for relationship in client.get("/api/v1/accounts/relationships", {"id[]": [friend.id]}).json():
        check(relationship, "Relationship")
    check(client.get(f"/api/v1/accounts/{friend.id}/followers").json()[0], "Account")

    media = _upload(client).json()
    check(media, "MediaAttachment")
    status = client.post("/api/v1/statuses", {"status": f"hi @{friend.username} #tag", "media_ids[]": [media["id"]]})
    check(status.json(), "Status")
    status = status.json()
    assert status["mentions"] and status["tags"] and status["media_attachments"]
    check(client.get(f"/api/v1/statuses/{status['id']}").json(), "Status")
    check(client.get(f"/api/v1/statuses/{status['id']}/context").json(), "Context")
    post(api(friend), "from a friend")
    home = client.get("/api/v1/timelines/home").json()
    assert len(home) == 2
    for item in home + client.get(f"/api/v1/accounts/{user.id}/statuses").json():
        check(item, "Status")

    marker = client.post("/api/v1/markers", {"home[last_read_id]": status["id"]}).json()
    check(marker["home"], "Marker")
    check(client.get("/api/v1/markers", {"timeline[]": "home"}).json()["home"], "Marker")
    check(client.get("/api/v1/preferences").json(), "Preferences")
    check(client.delete(f"/api/v1/statuses/{status['id']}").json(), "Status")
    assert not problems, "\n".join(dict.fromkeys(problems))
