"""The benchmark's app (baseline endpoints, ``seed_bench``) exists only under ``bench.settings``.

Production's settings cannot serve the baselines, whatever the environment says;
the bench settings serve them, and the naive baseline answers with the product's
own tweet objects.
"""
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from social import services as social_services
from tweets import services as tweet_services

REPO = Path(__file__).resolve().parents[2]
BENCH_PATHS = ("/v1/bench/ping", "/v1/bench/naive-timeline", "/v1/bench/bare-insert")

# What a server under the given settings answers (no database needed for these
# answers: a 404, or a 401 before any lookup), and whether seed_bench exists.
PROBE = textwrap.dedent("""
    import django
    from django.core.management import get_commands
    from django.test import Client

    django.setup()
    client = Client()
    for path in %r:
        print(path, client.get(path, secure=True).status_code)  # production redirects plain HTTP
    print("seed_bench", "seed_bench" in get_commands())
""")


def _probe(settings_module: str, **env) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    environ |= {"DJANGO_SETTINGS_MODULE": settings_module, "SECRET_KEY": secrets.token_urlsafe(50), **env}
    result = subprocess.run([sys.executable, "-c", PROBE % (BENCH_PATHS,)], cwd=REPO, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_production_settings_never_serve_the_baselines_even_when_asked():
    answers = _probe("config.settings.production", BENCH_ENDPOINTS="1")
    assert answers == {"/v1/bench/ping": "404", "/v1/bench/naive-timeline": "404",
                       "/v1/bench/bare-insert": "404", "seed_bench": "False"}


def test_the_bench_settings_serve_the_baselines_and_seed_bench():
    answers = _probe("bench.settings")
    assert answers == {"/v1/bench/ping": "401", "/v1/bench/naive-timeline": "401", "/v1/bench/bare-insert": "401",
                       "seed_bench": "True"}


def test_the_bench_settings_pass_djangos_checks():
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    environ |= {"DJANGO_SETTINGS_MODULE": "bench.settings", "SECRET_KEY": secrets.token_urlsafe(50)}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_test_settings_do_not_route_the_baselines(make_user, api):
    assert api(make_user()).get("/v1/bench/ping").status_code == 404


@pytest.fixture
def bench_urls(settings):
    settings.ROOT_URLCONF = "bench.urls"


@pytest.mark.django_db
def test_ping_answers_an_authenticated_reader(bench_urls, make_user, api):
    reader = make_user()
    r = api(reader).get("/v1/bench/ping")
    assert r.status_code == 200
    assert r.json() == {"user_id": str(reader.id)}


@pytest.mark.django_db
def test_the_naive_timeline_answers_what_the_home_timeline_does(bench_urls, make_user, api):
    reader, followed, stranger = make_user(), make_user(display_name="Followed"), make_user()
    social_services.follow_create(follower=reader, followee_id=followed.id)
    for n in range(3):
        tweet_services.tweet_create(author=followed, content=f"#tag {n} for @{reader.username}")
    tweet_services.tweet_create(author=reader, content="my own")
    tweet_services.tweet_create(author=stranger, content="not followed")

    naive = api(reader).get("/v1/bench/naive-timeline", {"limit": 3})
    home = api(reader).get("/v1/timeline/home", {"limit": 3})
    assert naive.status_code == home.status_code == 200
    assert naive.json()["data"] == home.json()["data"]
    assert len(naive.json()["data"]) == 3
    assert naive.json()["data"][1]["mentions"] == [reader.username]
    assert naive.json()["data"][1]["hashtags"] == ["tag"]


def _seed(tmp_path, *args: str) -> subprocess.CompletedProcess:
    from tests.stack.celery_processes import database_url

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    environ |= {"DJANGO_SETTINGS_MODULE": "bench.settings", "SECRET_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": database_url()}
    return subprocess.run([sys.executable, "manage.py", "seed_bench", "--users=100", "--tweets=200",
                           "--threshold=10", f"--manifest={tmp_path / 'manifest.json'}", *args],
                          cwd=REPO, env=environ, capture_output=True, text=True, timeout=300)


@pytest.mark.django_db(transaction=True)
def test_seed_bench_fills_every_column_the_tweet_model_has_and_a_reuse_resets_the_data_set(tmp_path):
    # COPY names its columns: one the seed leaves out, with no database default, fails the whole run.
    import json

    from bench.management.commands import seed_bench
    from social.models import Follow, User
    from timelines.models import PendingFanout
    from tweets import objects
    from tweets.models import Tweet

    result = _seed(tmp_path, "--active=0.2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert Tweet.objects.count() == 200
    assert not PendingFanout.objects.exists()  # seeded tweets were delivered long ago: nothing to fan out
    assert objects.TweetEntry.of(Tweet.objects.first()).media == ()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    # The probes the growth plots need: readers of exact followee counts, authors of exact follower counts.
    for count, reader in manifest["followee_probes"].items():
        assert Follow.objects.filter(follower_id=reader).count() == int(count)
        assert reader in manifest["active"]
    for count, author in [*manifest["probes"].items(), *manifest["all_active_probes"].items()]:
        assert Follow.objects.filter(followee_id=author).count() == int(count)
    for author in manifest["all_active_probes"].values():
        followers = set(Follow.objects.filter(followee_id=author).values_list("follower_id", flat=True))
        assert followers <= set(manifest["active"]), "every follower of the all-active probe is active"

    # A benchmark posts; the next run with the same arguments reuses the data set as it was seeded.
    tweet_services.tweet_create(author=User.objects.get(id=manifest["active"][0]), content="posted by a run")
    assert Tweet.objects.count() == 201
    result = _seed(tmp_path, "--active=0.2", "--reuse")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Reused" in result.stdout
    assert Tweet.objects.count() == 200
    assert json.loads((tmp_path / "manifest.json").read_text())["active"] == manifest["active"]

    # Other arguments: not this data set; the database is not empty, so the caller must empty it.
    result = _seed(tmp_path, "--active=0.3", "--reuse")
    assert result.returncode == seed_bench.NOT_REUSABLE, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.django_db
def test_the_bare_insert_stores_the_text_and_answers_201(bench_urls, make_user, api, anon):
    from django.db import connection

    from bench.apis import BARE_TABLE, ensure_bare_table

    with connection.cursor() as cursor:
        ensure_bare_table(cursor)
    author = make_user()
    r = api(author).post("/v1/bench/bare-insert", {"content": "a bare row"}, format="json")
    assert r.status_code == 201
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT author_id, content FROM {BARE_TABLE} WHERE id = %s", [int(r.json()["id"])])
        assert cursor.fetchone() == (author.id, "a bare row")
    assert api(author).post("/v1/bench/bare-insert", {"content": 7 * [1]}, format="json").status_code == 400
    assert anon.post("/v1/bench/bare-insert", {"content": "x"}, format="json").status_code == 401
