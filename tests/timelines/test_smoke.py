import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_post_and_read(make_user, api):
    alice, bob = make_user(), make_user()
    assert api(bob).post(f"/v1/users/{alice.id}/follow").json() == {"following": True, "status": "following"}
    r = api(alice).post("/v1/tweets", {"content": "hello #world @bob"}, format="json")
    assert r.status_code == 201, r.content
    page = api(bob).get("/v1/timeline/home").json()
    assert [t["tweet_id"] for t in page["data"]] == [r.json()["tweet_id"]]
