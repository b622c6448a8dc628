"""An upload shown and described before a status takes it: ``GET``/``PUT /api/v1/media/:id``,
as masto.js polls and edits it; the description and focus then show inside the status."""
import pytest

from .test_statuses import _upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_upload_is_shown_to_its_owner_with_its_url(masto, make_user):
    owner = masto(make_user(), "read write")
    media = _upload(owner).json()
    r = owner.get(f"/api/v1/media/{media['id']}")
    assert r.status_code == 200 and r.json()["id"] == media["id"] and r.json()["url"]
    assert r.json()["description"] is None and r.json()["meta"] == {}


def test_others_unknown_and_attached_media_are_not_found(masto, make_user):
    owner, other = masto(make_user()), masto(make_user())
    media = _upload(owner).json()
    assert other.get(f"/api/v1/media/{media['id']}").status_code == 404
    assert other.put(f"/api/v1/media/{media['id']}", {"description": "mine"}).status_code == 404
    assert owner.get("/api/v1/media/999999999").status_code == 404
    assert owner.post("/api/v1/statuses", {"media_ids[]": [media["id"]]}).status_code == 200
    # As Mastodon: once a status has it, it is the status's (edited with the status).
    assert owner.get(f"/api/v1/media/{media['id']}").status_code == 404
    assert owner.put(f"/api/v1/media/{media['id']}", {"description": "late"}).status_code == 404


def test_a_description_and_focus_are_kept_and_shown_in_the_status(masto, make_user):
    owner = masto(make_user())
    media = _upload(owner).json()
    r = owner.put(f"/api/v1/media/{media['id']}", {"description": "A cat, asleep", "focus": "0.5,-0.25"})
    assert r.status_code == 200, r.content
    assert r.json()["description"] == "A cat, asleep" and r.json()["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert owner.get(f"/api/v1/media/{media['id']}").json()["description"] == "A cat, asleep"
    status = owner.post("/api/v1/statuses", {"media_ids[]": [media["id"]]}).json()
    shown = status["media_attachments"][0]
    assert shown["description"] == "A cat, asleep" and shown["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    again = owner.get(f"/api/v1/statuses/{status['id']}").json()["media_attachments"][0]  # from the cache
    assert again["description"] == "A cat, asleep" and again["meta"]["focus"] == {"x": 0.5, "y": -0.25}


def test_the_upload_itself_takes_a_description_and_focus(masto, make_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .test_statuses import PNG

    owner = masto(make_user())
    r = owner.post("/api/v2/media", {"file": SimpleUploadedFile("a.png", PNG, content_type="image/png"),
                                     "description": "alt", "focus": "0,1"}, format="multipart")
    assert r.status_code == 200, r.content
    assert r.json()["description"] == "alt" and r.json()["meta"]["focus"] == {"x": 0.0, "y": 1.0}


@pytest.mark.parametrize("body", [{"description": "x" * 1501}, {"focus": "2,0"}, {"focus": "0"},
                                  {"focus": "a,b"}, {"focus": "nan,0"}, {"focus": "0,-1.5"}])
def test_bad_descriptions_and_focus_are_a_422(masto, make_user, body):
    owner = masto(make_user())
    media = _upload(owner).json()
    r = owner.put(f"/api/v1/media/{media['id']}", body)
    assert r.status_code == 422 and set(r.json()) == {"error"}, r.content


def test_the_longest_description_is_taken(masto, make_user):
    owner = masto(make_user())
    media = _upload(owner).json()
    r = owner.put(f"/api/v1/media/{media['id']}", {"description": "x" * 1500}, format="json")
    assert r.status_code == 200 and len(r.json()["description"]) == 1500


def test_media_needs_the_write_media_scope(masto, make_user):
    user = make_user()
    media = _upload(masto(user)).json()
    reader = masto(user, "read")
    assert reader.get(f"/api/v1/media/{media['id']}").status_code == 403
    assert reader.put(f"/api/v1/media/{media['id']}", {"description": "x"}).status_code == 403
    assert masto(user, "write:media").get(f"/api/v1/media/{media['id']}").status_code == 200
