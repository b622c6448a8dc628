"""The soak's own measuring parts: the audit's comparison, the truth it compares with, memory from /proc, and the
time series. (The soak itself runs for minutes against a full stack: `make soak`, docs/reliability.md.)"""

import os
import subprocess
import sys
import time

from bench.soak import compare, group_memory, series, truth_timelines
from bench.soak_report import memory_trend
from social.services import follow_create, follow_delete, user_suspend
from tweets.services import tweet_create, tweet_delete


def test_compare_names_lost_extra_duplicated_and_misordered_tweets():
    assert compare([5, 4, 2], [5, 4, 2]) == {"lost": [], "extra": [], "duplicates": 0, "ordered": True,
                                             "equal": True}
    diff = compare([5, 5, 9, 2], [9, 5, 4, 2])
    assert diff["lost"] == [4] and diff["extra"] == [] and diff["duplicates"] == 1
    assert not diff["ordered"] and not diff["equal"]
    assert compare([9, 7], [9])["extra"] == [7]


def test_truth_is_own_and_accepted_followees_tweets_not_deleted_of_active_authors(make_user):
    reader, kept, unfollowed, suspended, stranger = (make_user() for _ in range(5))
    for other in (kept, unfollowed, suspended):
        follow_create(follower=reader, followee_id=other.id)
    own = tweet_create(author=reader, content="mine").id
    shown = tweet_create(author=kept, content="shown").id
    deleted = tweet_create(author=kept, content="deleted")
    tweet_delete(tweet_id=deleted.id, actor=kept)
    tweet_create(author=unfollowed, content="unfollowed")
    tweet_create(author=suspended, content="suspended")
    tweet_create(author=stranger, content="not followed")
    follow_delete(follower=reader, followee_id=unfollowed.id)
    user_suspend(user_id=suspended.id)
    assert truth_timelines([reader.id])[reader.id] == sorted([own, shown], reverse=True)


def test_group_memory_sums_a_process_group_from_proc():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(30 * 2**20); time.sleep(30)"],
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            memory = group_memory({"child": child.pid, "gone": 2**22 + 7})
            if memory["child"]["rss"] > 30 * 2**20:
                break
            time.sleep(0.1)
        assert memory["child"]["processes"] == 1
        assert memory["child"]["rss"] > 30 * 2**20
        assert memory["gone"] == {"processes": 0, "rss": 0, "pss": 0}
        assert os.getpgrp() != child.pid
    finally:
        child.kill()
        child.wait()


def test_memory_trend_reports_start_end_and_slope():
    samples = [{"t": t, "groups": {"web": {"processes": 2, "rss": 100 * 2**20 + t * 2**20, "pss": 0}}}
               for t in range(0, 600, 5)]
    trend = memory_trend(samples, "web")
    assert trend["slope_mb_per_hour"] == 3600.0  # 1 MB a second
    assert trend["start_mb"] < trend["end_mb"]


def test_series_buckets_rates_errors_and_read_percentiles():
    events = [(100.0 + i / 10, "read", 200, float(i)) for i in range(100)]  # 10 s of 10 reads/s
    events += [(101.0, "post", 201, 5.0), (109.0, "follow", 502, 7.0)]
    rows = series(events, t0=100.0, bucket=10)
    assert rows == [{"t": 10, "read_rps": 10.0, "write_rps": 0.2, "errors": 1, "read_p50": 49.0,
                     "read_p99": 98.0}]


def test_the_stream_readers_follows_never_change():
    """Their streams are audited against their timelines: a follow would add older tweets no stream sends."""
    import random

    from bench.soak import Workload

    users = list(range(1, 21))
    steady = set(users[:5])
    work = Workload(headers={u: {} for u in users}, readers=users, popularity=[1.0] * 20, users=users,
                    steady=steady)
    for u in users:
        work.following[u] = {v for v in users if v != u and v % 3 == 0}
        work.posted[u] = [1000 + u]
    random.seed(3)
    kinds = []
    for _ in range(500):
        kind, _, user = work.graph().headers["X-Soak"].partition(" ")
        kinds.append(kind)
        assert kind == "delete" or int(user) not in steady
    assert {"follow", "unfollow", "delete"} <= set(kinds)


def test_haproxy_config_sends_the_streaming_paths_to_the_stream_processes(tmp_path):
    import shutil
    from pathlib import Path

    from bench.soak import HAPROXY_CONFIG
    from chaos.streams import SERVED_BY
    from tests.helpers import tool_missing

    binary = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if binary is None:
        tool_missing("haproxy is not installed (make haproxy installs Debian's)")
    config = tmp_path / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(
        socket=tmp_path / "sock", host="127.0.0.1", port=1, served_by=SERVED_BY,
        servers="    server web-a 127.0.0.1:2 check", stream_servers="    server stream-a 127.0.0.1:3 check"))
    checked = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "acl streaming path_beg /api/v1/streaming" in text and "acl streaming path /v1/timeline/home/stream" in text
    assert "use_backend stream if streaming" in text and "timeout tunnel" in text
