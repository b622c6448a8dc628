"""The fault-injection suite in its bounded form (``make chaos`` runs the full one).

One stack of its own (PostgreSQL, Redis, a broker, the Procfile's web, stream,
worker and beat, all on spare ports), every fault in turn under load, and after
each an audit: every user's timeline, scrolled over HTTP to the end, equals what
PostgreSQL says they should see; the large fan-out's cached timelines hold its
tweets once each; every acknowledged post is stored, once; every stream reader
is connected again, and what each ``/v1`` reader received (resuming with
``Last-Event-ID`` after each disconnection) is its timeline, none missing, none
twice. See chaos/run.py and chaos/streams.py.
"""
import pytest

from chaos.run import FAULTS, PROFILES, Chaos, table
from chaos.stack import Stack, volume_possible
from tests.helpers import tool_missing

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


# The disk-full fault mounts a tmpfs; without the right to, the other faults still run, and the
# test below says what was left out.
FAULTS_HERE = [f for f in FAULTS if volume_possible() or f != "postgres_disk_full"]


def test_every_fault_leaves_every_timeline_equal_to_postgresql():
    with Stack(web_workers=2, fanout_batch=PROFILES["quick"]["batch"]) as stack:
        results = Chaos(stack, PROFILES["quick"]).run(FAULTS_HERE)
    print("\n" + table(results))
    assert [r.name for r in results] and len(results) == len(FAULTS_HERE)
    for r in results:
        assert not r.problems, f"{r.name}: the audit found {r.problems}"
        assert not r.broken_promises(), f"{r.name}: clients saw {r.broken_promises()}"


def test_the_disk_full_fault_can_run_here():
    if not volume_possible():
        tool_missing("the disk-full fault mounts a tmpfs for PostgreSQL's tables: run as root with CAP_SYS_ADMIN")
