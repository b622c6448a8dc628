"""Every route serves the methods it declares and no other, and two answers that
once went wrong: a DELETE sent to a status's context, and a replayed
``Idempotency-Key`` whose status was deleted since."""
import pytest

# Transactions commit, as in production: fan-out and backfills run after commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_delete_on_a_statuses_context_is_a_405_and_deletes_nothing(masto, make_user):
    client = masto(make_user())
    status = client.post("/api/v1/statuses", {"status": "still here"}).json()
    r = client.delete(f"/api/v1/statuses/{status['id']}/context")
    assert r.status_code == 405 and set(r.json()) == {"error"}, r.content
    assert client.get(f"/api/v1/statuses/{status['id']}").status_code == 200


def test_replaying_the_key_of_a_deleted_status_is_a_404_and_posts_nothing(masto, make_user):
    user = make_user()
    client = masto(user)
    status = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del").json()
    assert client.delete(f"/api/v1/statuses/{status['id']}").status_code == 200
    r = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del")
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}, r.content
    assert client.get(f"/api/v1/accounts/{user.id}/statuses").json() == []
