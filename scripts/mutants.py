"""Mutation testing of the timeline store and read path: do the tests notice when the code is wrong?

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/timeline_mutants .venv/bin/python scripts/mutants.py
    .venv/bin/python scripts/mutants.py --check            # only check that every mutant finds its line
    .venv/bin/python scripts/mutants.py --list             # list the mutants
    .venv/bin/python scripts/mutants.py --only insert.trim-off-by-one combine.cap-off-by-one

Each mutant below is one small, deliberate bug in the timeline store (``timelines/store/``: its Lua
scripts in ``lua/`` and its Python modules) or ``timelines/selectors.py``, addressed by file and line:
the text it replaces (which must occur exactly once on that line, or on the lines it runs on to when it
holds a line break) and what replaces it. The text is a guard: when a line moves, ``--check`` says so
and where the text is now, instead of mutating the wrong line. The script checks every mutant, runs the
suite once unmutated (it must pass), then applies the mutants one at a time to the working tree, runs
the timeline suite against each (``-x``: it stops at the first failure, fast test files first), and
restores the file, also on Ctrl-C or SIGTERM. A mutant is *killed* when a test fails (or the run times
out), *survived* when the suite still passes.

It shows each mutant's outcome as it goes, then prints a table (mutant, killed or survived, the first
failing test) and writes it as Markdown to ``--out`` (with ``--docs``, into docs/testing.md too).
Mutants marked ``equivalent`` change no behaviour a client or the cache contents could show; they are
expected to survive, and the table says why. The exit status is 1 if any other mutant survived.

Run it from a clean tree (it refuses to start if the mutated files have uncommitted changes, unless
``--allow-dirty``), one run at a time, with a ``DATABASE_URL`` of its own: pytest-django creates its
test database from it.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = "timelines/store/lua"
OLDER = f"{LUA}/lib/older.lua"
INSERT = f"{LUA}/insert.lua"
COMBINE = f"{LUA}/combine.lua"
GENERATION = f"{LUA}/generation_advance.lua"
PROGRESS_INIT = f"{LUA}/progress_init.lua"
PROGRESS_DONE = f"{LUA}/progress_done.lua"
PULLER_ADD = f"{LUA}/puller_add.lua"
HEAD = f"{LUA}/head.lua"
WINDOWS = "timelines/store/windows.py"
READS = "timelines/store/reads.py"
SELECTORS = "timelines/selectors.py"

# Fast, targeted files first so that most mutants are killed within seconds; the HTTP suites next; the
# hypothesis oracle (about a minute) last. pytest-django runs tests without a database after the others,
# whatever the order on the command line, so the store's own tests (no database) are a first run of
# their own. Any other test file of tests/timelines runs in the second run, before the oracle.
STORE_TESTS = [
    "tests/timelines/test_store.py",
    "tests/timelines/test_store_scripts.py",
]
FIRST = [
    "tests/timelines/test_read_path.py",
    "tests/timelines/test_home_timeline.py",
    "tests/timelines/test_lifecycle.py",
    "tests/timelines/test_races.py",
    "tests/timelines/test_redis_blips.py",
    "tests/tweets/test_cache_consistency.py",
]
LAST = ["tests/timelines/test_oracle.py"]
DOCS = "docs/testing.md"
BEGIN, END = "<!-- mutants:begin -->", "<!-- mutants:end -->"
PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    line: int  # where ``original`` begins, counted from 1
    original: str  # on that line (a line break in it runs on to the next line)
    replacement: str
    description: str
    equivalent: str | None = None  # why no behaviour changes, if none does


def M(name, file, line, original, replacement, description, equivalent=None):  # noqa: N802 - reads as a table
    return Mutant(name, file, line, original, replacement, description, equivalent)


MUTANTS = [
    # --- older(a, b): decimal ids compared as numbers ---------------------------------------------
    M("compare.length-flipped", OLDER, 5, "if #a ~= #b then return #a < #b end", "if #a ~= #b then return #a > #b end",
      "a longer id counts as older"),
    M("compare.length-ignored", OLDER, 5, "  if #a ~= #b then return #a < #b end\n", "",
      "ids compared lexically only (9 > 10)"),
    M("compare.lexical-flipped", OLDER, 6, "  return a < b\nend", "  return a > b\nend",
      "ids of equal length compared backwards"),
    M("compare.or-equal", OLDER, 6, "  return a < b\nend", "  return a <= b\nend",
      "an id counts as older than itself"),
    # --- _INSERT: sorted, idempotent insert into live lists -----------------------------------------
    M("insert.creates-missing-key", INSERT, 74, "place(KEYS[i], redis.call('LINDEX', KEYS[i], 0))",
      "place(KEYS[i], redis.call('LINDEX', KEYS[i], 0) or '0')",
      "an insert into a missing key creates the list (a timeline nobody reads)"),
    M("insert.head-fast-path-flipped", INSERT, 34,
      "if older(head, id) then return redis.call('LPUSH', key, id) end",
      "if older(id, head) then return redis.call('LPUSH', key, id) end",
      "LPUSH when the id is older than the head instead of newer"),
    M("insert.head-fast-path-dropped", INSERT, 34,
      "  if older(head, id) then return redis.call('LPUSH', key, id) end\n", "",
      "no head check: an id newer than the head goes through the walk (which starts below the head)"),
    M("insert.head-duplicate-not-skipped", INSERT, 35, "  if head == id then return 0 end\n", "",
      "an id equal to the head is inserted again"),
    M("insert.walk-starts-too-low", INSERT, 36,
      "local pos, chunk, pivot = 1, 8, nil", "local pos, chunk, pivot = 2, 8, nil",
      "the walk skips the entry just below the head"),
    M("insert.walk-duplicate-not-skipped", INSERT, 41, "if e == id then pivot = false break end",
      "if false then pivot = false break end", "an id already present further down is inserted again"),
    M("insert.walk-pivot-flipped", INSERT, 42, "if older(e, id) then pivot = e break end",
      "if older(id, e) then pivot = e break end", "inserts before the first newer entry, not the first older"),
    M("insert.after-pivot", INSERT, 47, "redis.call('LINSERT', key, 'BEFORE', pivot, id)",
      "redis.call('LINSERT', key, 'AFTER', pivot, id)", "inserts after the first older entry"),
    M("insert.appends-below-range", INSERT, 39, "if #items == 0 then pivot = false end",
      "if #items == 0 then pivot = false; len = redis.call('RPUSH', key, id) end",
      "an id older than a list without the sentinel is appended (below the cached range)"),
    M("insert.trim-ignores-slack", INSERT, 54, "if len > limit then", "if len > cap then",
      "trims as soon as the list passes the cap, not cap + slack"),
    M("insert.trim-never", INSERT, 54, "if len > limit then", "if false then", "never trims"),
    M("insert.trim-off-by-one", INSERT, 54, "redis.call('LTRIM', key, 0, cap - 1)",
      "redis.call('LTRIM', key, 0, cap)",
      "trims to cap + 1 entries"),
    M("insert.counts-no-op", INSERT, 52, "if len > 0 then", "if len >= 0 then",
      "a list that did not take the id (already present) is counted as written"),
    M("insert.mark-pushes-equal", INSERT, 69, "local fast = mark and older(mark, id)",
      "local fast = mark and not older(id, mark)", "an id equal to the mark (a retry) is pushed again without a look"),
    M("insert.mark-ignored", INSERT, 69, "local fast = mark and older(mark, id)", "local fast = mark",
      "every insert into a slot with a mark pushes without reading the head"),
    M("insert.mark-not-raised", INSERT, 78, "    redis.call('SET', mark_key, id)\n", "",
      "the fast path leaves the mark below the id it pushed"),
    M("insert.mark-never-made", INSERT, 79, "  elseif not mark then", "  elseif false then",
      "a missing mark is never made again: every insert takes the slow path",
      equivalent="only the speed changes: without a mark every insert reads each head"),
    # --- _COMBINE: rebuild, replace, backfill, remove ------------------------------------------------
    M("combine.generation-skipped", COMBINE, 27,
      "if ARGV[5] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then",
      "if false then", "no generation check: a merge read before a follow change is written"),
    M("combine.generation-and-to-or", COMBINE, 27, "if ARGV[5] ~= '' and (redis.call('GET'",
      "if ARGV[5] ~= '' or (redis.call('GET'", "the generation check also runs without a generation"),
    M("combine.generation-default", COMBINE, 27, "or '0') ~= ARGV[5]", "or '1') ~= ARGV[5]",
      "an absent generation counts as 1, not 0"),
    M("combine.backfill-creates-key", COMBINE, 31, "(mode == 'backfill' or mode == 'remove') then return -2 end",
      "(mode == 'remove') then return -2 end", "a backfill creates a timeline that is not cached"),
    M("combine.remove-on-missing-key", COMBINE, 31, "(mode == 'backfill' or mode == 'remove') then return -2 end",
      "(mode == 'backfill') then return -2 end", "a remove on a missing key goes on",
      equivalent="with no key there is nothing to remove from: the script deletes the absent key, writes "
                 "nothing and returns 0 (the caller ignores the result)"),
    M("combine.replace-unions", COMBINE, 34, "local existing, have = {}, exists and mode ~= 'replace'",
      "local existing, have = {}, exists", "replace keeps what the list held (a union, like rebuild)"),
    M("combine.sentinel-unseen", COMBINE, 38, "if existing[#existing] == '0' then", "if false then",
      "the sentinel of the existing list is read as an id"),
    M("combine.run-floor-ignored", COMBINE, 42, "if not run_complete then i_floor = incoming[#incoming] end", "",
      "an incomplete run vouches for everything (no floor)"),
    M("combine.remove-drops-sentinel", COMBINE, 44, "if mode == 'remove' then\n  complete = e_complete",
      "if mode == 'remove' then\n  complete = false", "a remove drops the sentinel of a complete list"),
    M("combine.backfill-complete-or", COMBINE, 48, "complete = e_complete and run_complete",
      "complete = e_complete or run_complete", "a backfill keeps the sentinel though the author's run is partial"),
    M("combine.backfill-floor-min", COMBINE, 50, "older(floor, i_floor)", "older(i_floor, floor)",
      "a backfill vouches down to the lower floor, not the higher"),
    M("combine.backfill-existing-floor-ignored", COMBINE, 49,
      "  floor = e_floor\n  if i_floor ~= nil and (floor == nil or older(floor, i_floor))",
      "  floor = nil\n  if i_floor ~= nil and (floor == nil or older(floor, i_floor))",
      "a backfill ignores the floor of the existing list"),
    M("combine.rebuild-complete-and", COMBINE, 53, "complete = e_complete or run_complete",
      "complete = e_complete and run_complete", "a rebuild is complete only if both sides are"),
    M("combine.rebuild-floor-max", COMBINE, 56, "older(i_floor, floor)", "older(floor, i_floor)",
      "a rebuild vouches down to the higher floor, not the lower"),
    M("combine.rebuild-floor-dropped", COMBINE, 55,
      "    floor = e_floor\n    if i_floor ~= nil and (floor == nil or older(i_floor, floor)) then floor = i_floor end",
      "    floor = nil", "a rebuild computes no floor at all",
      equivalent="the union of two gapless runs ends at the lower floor; no id lies below it, so a cut "
                 "there drops nothing"),
    M("combine.fresh-never-complete", COMBINE, 58,
      "else\n  complete = run_complete\nend", "else\n  complete = false\nend",
      "a rebuild of a missing key never writes the sentinel"),
    M("combine.merge-order-flipped", COMBINE, 73, "if b == nil or (a ~= nil and older(b, a)) then",
      "if b == nil or (a ~= nil and older(a, b)) then", "the merge takes the older id first"),
    M("combine.merge-keeps-duplicate", COMBINE, 78, "pick = a; i = i + 1; j = j + 1", "pick = a; i = i + 1",
      "an id on both sides is kept twice"),
    M("combine.floor-cut-dropped", COMBINE, 80, "    if floor ~= nil and older(pick, floor) then break end\n", "",
      "ids below the floor are kept"),
    M("combine.floor-cut-inclusive", COMBINE, 80, "if floor ~= nil and older(pick, floor) then break end",
      "if floor ~= nil and (pick == floor or older(pick, floor)) then break end",
      "the floor id itself is cut"),
    M("combine.cap-off-by-one", COMBINE, 84, "if #merged > cap then", "if #merged >= cap then",
      "a run of exactly cap ids loses its sentinel"),
    M("combine.cap-keeps-sentinel", COMBINE, 85,
      "for k = #merged, cap + 1, -1 do merged[k] = nil end\n  complete = false",
      "for k = #merged, cap + 1, -1 do merged[k] = nil end", "a list cut to the cap keeps the sentinel"),
    M("combine.cap-keeps-one-more", COMBINE, 85, "for k = #merged, cap + 1, -1", "for k = #merged, cap + 2, -1",
      "the cut keeps cap + 1 ids"),
    M("combine.no-sentinel", COMBINE, 90, "if complete then merged[#merged + 1] = '0' end", "",
      "a complete list is written without its sentinel"),
    M("combine.empty-guard-dropped", COMBINE, 91, "if #merged == 0 then return 0 end\n", "",
      "no early return for an empty result",
      equivalent="the RPUSH loop does not run for 0 entries and EXPIRE on the deleted key is a no-op; "
                 "it returns #merged, 0, as before"),
    M("combine.rpush-chunk-short", COMBINE, 93, "math.min(k + 999, #merged)", "math.min(k + 998, #merged)",
      "every 1000-entry RPUSH chunk loses its last id"),
    M("combine.ttl-always-reset", COMBINE, 97, "(mode == 'backfill' or mode == 'remove') and keep_ttl > 0",
      "(mode == 'backfill' and mode == 'remove') and keep_ttl > 0",
      "backfill and remove reset the idle TTL (a follow keeps an idle timeline alive)"),
    M("combine.ttl-always-kept", COMBINE, 97, "(mode == 'backfill' or mode == 'remove') and keep_ttl > 0",
      "keep_ttl > 0", "a rebuild keeps the old TTL instead of setting the idle TTL"),
    M("combine.mark-not-raised", COMBINE, 96,
      "if mark and merged[1] ~= '0' and older(mark, merged[1]) then redis.call('SET', KEYS[3], merged[1]) end",
      "", "a rebuild writes ids above the mark without raising it"),
    # --- generation, progress and puller scripts -------------------------------------------------------
    M("generation.drop-ignored", GENERATION, 7, "if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end", "",
      "generation_advance(drop_timeline=True) keeps the timeline"),
    M("generation.not-advanced", GENERATION, 6, "local g = advance(KEYS[2], 'EX', ARGV[1])",
      "local g = tonumber(redis.call('GET', KEYS[2]) or '0')", "the generation never moves on"),
    M("progress.init-twice", PROGRESS_INIT, 4, "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n", "",
      "a duplicated coordinator records (and sends) its batches again"),
    M("progress.done-early", PROGRESS_DONE, 3, "redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call",
      "redis.call('HDEL', KEYS[1], ARGV[1]) == 1 or redis.call", "the first batch done finishes the fan-out"),
    M("puller.epoch-always", PULLER_ADD, 4,
      "if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end",
      "redis.call('SADD', KEYS[1], ARGV[1]); redis.call('INCR', KEYS[2])",
      "every pulled tweet moves the pull epoch on (all cached graphs go stale)"),
    # --- Window.floor, _window, read ---------------------------------------------------------------------
    M("window.floor-complete-ignored", WINDOWS, 26, "        if self.complete:\n            return None\n", "",
      "a complete window has a floor (its last id), so PostgreSQL is asked below it"),
    M("window.floor-is-head", WINDOWS, 28, "return self.ids[-1] if self.ids else _NO_FLOOR",
      "return self.ids[0] if self.ids else _NO_FLOOR", "the floor is the newest id, not the oldest"),
    M("window.empty-vouches-for-all", WINDOWS, 28, "return self.ids[-1] if self.ids else _NO_FLOOR",
      "return self.ids[-1] if self.ids else None", "an incomplete, empty window claims the whole range"),
    M("window.sentinel-as-id", WINDOWS, 37,
      "[int(x) for x in raw[:cap] if x != SENTINEL]", "[int(x) for x in raw[:cap]]",
      "the sentinel is read as tweet id 0"),
    M("window.cut-one-short", WINDOWS, 37, "[int(x) for x in raw[:cap] if", "[int(x) for x in raw[:cap - 1] if",
      "a window drops its last id (and may still claim completeness)"),
    M("window.not-cut", WINDOWS, 37, "[int(x) for x in raw[:cap] if", "[int(x) for x in raw if",
      "a prefix read keeps the one extra entry read to find the sentinel"),
    M("window.complete-and-to-or", WINDOWS, 36, "complete = bool(raw) and raw[-1] == SENTINEL",
      "complete = bool(raw) or raw[-1] == SENTINEL", "every non-empty list reads as complete"),
    M("window.sentinel-at-head", WINDOWS, 36, "complete = bool(raw) and raw[-1] == SENTINEL",
      "complete = bool(raw) and raw[0] == SENTINEL", "completeness read from the head, not the tail"),
    M("read.no-extra-entry", READS, 93, "pipe.lrange(key, 0, size)", "pipe.lrange(key, 0, size - 1)",
      "a read no longer fetches the entry past the window: a full complete list reads as incomplete"),
    M("head.stale-graph-trusted", HEAD, 26, "if bar and string.sub(graph, 1, #tag) == tag then", "if bar then",
      "a first page's read merges the pulled lists of a graph cached at another generation or pull epoch"),
    M("head.followees-read-as-pulled", HEAD, 29, "for pos = bar + 1 + 4 * followees,", "for pos = bar + 1,",
      "a first page's read takes every followee for a celebrity"),
    M("head.oldest-first", HEAD, 48, "return older(b, a)", "return older(a, b)",
      "a first page's read asks for the oldest ids' values, not the newest"),
    M("head.values-shifted", HEAD, 52, "keys[i] = ARGV[3] .. id", "keys[i] = ARGV[3] .. (asked[i + 1] or id)",
      "a first page's values are read for the next id: each tweet shown with its neighbour's entry"),
    M("read.head-no-extra-entry", READS, 95, "args=[size, head_values.count", "args=[size - 1, head_values.count",
      "a first page's read no longer fetches the entry past the window: a full complete list reads as incomplete"),
    # --- cached_ids: the floor and the merge of the windows --------------------------------------------
    M("cached.floor-min", SELECTORS, 102, "floor = max(floors) if floors else None",
      "floor = min(floors) if floors else None",
      "the union vouches down to the lowest floor, not the highest"),
    M("cached.floor-timeline-only", SELECTORS, 101, "floors = [w.floor for w in windows if w.floor is not None]",
      "floors = [w.floor for w in windows[:1] if w.floor is not None]", "the pulled lists' floors are ignored"),
    M("cached.filter-strict", SELECTORS, 106, "tid >= floor}", "tid > floor}", "the id at the floor is left out"),
    M("cached.filter-dropped", SELECTORS, 106, "for tid in w.ids if floor is None or tid >= floor}",
      "for tid in w.ids}",
      "ids below the floor are kept"),
    M("cached.single-window-always", SELECTORS, 103, "if len(windows) == 1:", "if len(windows) >= 1:",
      "the pushed timeline alone, pulled lists ignored"),
    M("cached.single-window-never", SELECTORS, 103, "if len(windows) == 1:", "if len(windows) == 0:",
      "no shortcut for a single window",
      equivalent="the general path gives the same ids for one window: its floor is its own last id, so "
                 "the filter keeps every id, and they are unique and sorted already"),
    # --- _Timeline._ids_older_than ---------------------------------------------------------------------
    M("older-than.cursor-inclusive", SELECTORS, 160, "if cursor is None or tid < cursor]",
      "if cursor is None or tid <= cursor]",
      "the cursor tweet itself is on the next page"),
    M("older-than.cursor-or-to-and", SELECTORS, 160, "if cursor is None or tid < cursor]",
      "if cursor is not None and tid < cursor]", "the first page shows no cached id"),
    M("older-than.whole-cache-continues", SELECTORS, 164,
      "        if floor is None:\n            return\n        before",
      "        before",
      "a complete cache still asks PostgreSQL"),
    M("older-than.seam-max", SELECTORS, 166, "min(cursor, floor)", "max(cursor, floor)",
      "below the floor, PostgreSQL restarts at the floor instead of the cursor"),
    M("older-than.seam-cursor-only", SELECTORS, 166, "before = floor if cursor is None else min(cursor, floor)",
      "before = floor if cursor is None else cursor", "PostgreSQL starts at the cursor even above the floor"),
    M("older-than.seam-floor-only", SELECTORS, 166, "before = floor if cursor is None else min(cursor, floor)",
      "before = floor", "PostgreSQL starts at the floor whatever the cursor"),
    M("older-than.db-stops-early", SELECTORS, 171, "            if len(older) < size:\n                return",
      "            if len(older) <= size:\n                return", "stops after a full PostgreSQL chunk"),
    M("older-than.db-next-from-head", SELECTORS, 173, "before = older[-1]", "before = older[0]",
      "the next PostgreSQL chunk starts below the newest id of the last, not the oldest"),
    M("older-than.cached-chunks-of-one", SELECTORS, 162,
      "yield from _chunked(ids, want)", "yield from _chunked(ids, 1)",
      "cached ids hydrated one at a time (a round trip each)"),
    M("older-than.db-chunks-start-at-one", SELECTORS, 167, "        for size in _sizes(want):\n            older",
      "        for size in _sizes(1):\n            older", "PostgreSQL read 1, 2, 4 ... ids at a time"),
    M("sizes.no-growth", SELECTORS, 194, "size = min(size * 2, 1000)", "size = min(size, 1000)",
      "chunks never grow when hidden tweets thin a page out"),
    # --- _Timeline._ids_newer_than ----------------------------------------------------------------------
    M("newer-than.since-at-floor", SELECTORS, 177, "if floor is not None and since < floor:",
      "if floor is not None and since <= floor:", "PostgreSQL is also asked when since is the floor",
      equivalent="PostgreSQL is asked for ids strictly between since and the floor: with since == floor "
                 "there are none, so one empty query is all it adds"),
    M("newer-than.and-to-or", SELECTORS, 177, "if floor is not None and since < floor:",
      "if floor is None or since < floor:", "PostgreSQL asked though the cache holds the whole timeline"),
    M("newer-than.since-above-floor", SELECTORS, 177, "if floor is not None and since < floor:",
      "if floor is not None and since > floor:", "PostgreSQL asked when since is above the floor, not below"),
    M("newer-than.db-unbounded", SELECTORS, 181, "after=after, before=floor, limit=size",
      "after=after, before=None, limit=size",
      "the PostgreSQL part runs past the floor into the cached range"),
    M("newer-than.db-skips-cache", SELECTORS, 184, "                if len(newer) < size:\n                    break",
      "                if len(newer) < size:\n                    return", "the cached ids never follow PostgreSQL's"),
    M("newer-than.db-next-from-head", SELECTORS, 186, "after = newer[-1]", "after = newer[0]",
      "the next PostgreSQL chunk starts above the oldest id of the last, not the newest"),
    M("newer-than.since-inclusive", SELECTORS, 187, "if tid > since]", "if tid >= since]",
      "the since tweet itself is shown"),
    # --- timeline_page_for_user -------------------------------------------------------------------------
    M("page.first-page-prefix-too-small", SELECTORS, 226, "return 2 * limit + 20 if cursor",
      "return limit if cursor", "a first page reads only `limit` ids of each list"),
    M("page.take-only-limit", SELECTORS, 263, "tweets = _take(older, limit + 1)",
      "tweets = _take(older, limit)", "one tweet too few read to know whether older exist"),
    M("page.has-older-ge", SELECTORS, 264, "has_older = len(tweets) > limit", "has_older = len(tweets) >= limit",
      "a full last page gets a next_cursor"),
    M("page.next-cursor-always", SELECTORS, 283, "if tweets and has_older else None", "if tweets else None",
      "next_cursor set on the last page"),
    M("page.since-has-older-always", SELECTORS, 272, "has_older = bool(_take(timeline.older_than(oldest, 1), 1))",
      "has_older = True", "a since= page always says older tweets exist"),
    M("page.since-empty-oldest", SELECTORS, 271, "else since + 1", "else since",
      "an empty since= page looks for tweets older than since, not since + 1",
      equivalent="has_older only sets next_cursor on a page with tweets; on an empty page it is unused"),
    M("page.since-not-reversed", SELECTORS, 270, "_take(newer, limit)[::-1]", "_take(newer, limit)",
      "a since= page oldest first"),
    M("page.prev-cursor-last", SELECTORS, 278, "prev_cursor = str(tweets[0].tweet_id)",
      "prev_cursor = str(tweets[-1].tweet_id)",
      "prev_cursor is the oldest tweet of the page"),
    M("page.prev-cursor-lost", SELECTORS, 280, "prev_cursor = str(since) if since is not None else None",
      "prev_cursor = None", "an empty since= page loses its prev_cursor"),
]


def test_runs() -> list[list[str]]:
    """The timeline suite as pytest runs, in order: the store's tests, then the rest, the oracle last."""
    listed = STORE_TESTS + FIRST + LAST
    others = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests/timelines").glob("test_*.py")
                    if str(p.relative_to(ROOT)) not in listed)
    runs = [STORE_TESTS, FIRST + others + LAST]
    return [[f for f in run if (ROOT / f).exists()] for run in runs]


def _span(m: Mutant, text: str) -> tuple[int, int] | str:
    """Where ``m.original`` lies in ``text`` (start and end offsets), or why it is not where ``m`` says."""
    lines = text.splitlines(keepends=True)
    first = m.line - 1
    block = "".join(lines[first : first + m.original.count("\n") + 1])
    count = block.count(m.original)
    if count == 1:
        start = sum(len(line) for line in lines[:first]) + block.index(m.original)
        return start, start + len(m.original)
    if count > 1:
        return f"its text occurs {count} times on line {m.line} of {m.file}: {m.original!r}"
    now = [str(text[:at].count("\n") + 1) for at in _occurrences(text, m.original)]
    where = f"it is on line {', '.join(now)} now" if now else "it is nowhere in the file"
    return f"its text is not on line {m.line} of {m.file} ({where}): {m.original!r}"


def _occurrences(text: str, part: str) -> list[int]:
    found, at = [], text.find(part)
    while at != -1:
        found.append(at)
        at = text.find(part, at + 1)
    return found


def mutated(m: Mutant, text: str) -> str:
    """``text`` (the file's) with the mutant applied; ``check_mutants`` must have found it in place."""
    start, end = _span(m, text)
    return text[:start] + m.replacement + text[end:]


def check_mutants(mutants: list[Mutant]) -> list[str]:
    problems = []
    names = [m.name for m in MUTANTS]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"{name}: the name is used twice")
    for m in mutants:
        path = ROOT / m.file
        span = _span(m, path.read_text()) if path.is_file() else f"{m.file} does not exist"
        if isinstance(span, str):
            problems.append(f"{m.name}: {span}")
        if m.original == m.replacement:
            problems.append(f"{m.name}: the replacement is the text itself")
    return problems


def relocate(mutants: list[Mutant]) -> list[str]:
    """Move each mutant whose text left its line, and now occurs once in its file, to that line, by
    rewriting the line numbers in this file's table; what it moved, and what it could not."""
    script = Path(__file__)
    source = script.read_text()
    report = []
    for m in mutants:
        text = (ROOT / m.file).read_text() if (ROOT / m.file).is_file() else ""
        if not isinstance(_span(m, text), str):
            continue
        found = _occurrences(text, m.original)
        if len(found) != 1:
            report.append(f"{m.name}: its text occurs {len(found)} times in {m.file}: not moved")
            continue
        line = text[:found[0]].count("\n") + 1
        entry = re.compile(rf'(M\("{re.escape(m.name)}", \w+, ){m.line},')
        source, moved = entry.subn(rf"\g<1>{line},", source, count=1)
        report.append(f"{m.name}: line {m.line} -> {line}" if moved else f"{m.name}: its entry was not found here")
    script.write_text(source)
    return report


def dirty(files: set[str]) -> list[str]:
    out = subprocess.run(["git", "status", "--porcelain", "--", *sorted(files)], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    return [line[3:] for line in out.splitlines()]


class Stop(Exception):
    """SIGTERM: stop like Ctrl-C does (the file is restored on the way out)."""


def _on_sigterm(signum, frame):
    raise Stop()


def run_suite(timeout: float, verbose: bool) -> tuple[str, str, str]:
    """Run the suite once, stopping at the first failure: (outcome, first failing test, last lines of output)."""
    deadline = time.monotonic() + timeout
    for files in test_runs():
        outcome, first, tail = run_pytest(files, max(1.0, deadline - time.monotonic()), verbose)
        if outcome != "passed":
            return outcome, first, tail
    return "passed", "", ""


def run_pytest(files: list[str], timeout: float, verbose: bool) -> tuple[str, str, str]:
    """One pytest run: (outcome, first failing test, last lines of output)."""
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *files]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: stopped as a whole
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if verbose:
                print("    " + line, end="", flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", f"(no result after {timeout:.0f} s)", "\n".join(lines[-20:])
    except BaseException:  # Ctrl-C, SIGTERM: stop pytest too
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    reader.join()
    if proc.returncode in (0, 5):  # 5: no tests collected
        return "passed", "", ""
    # The short summary's lines, "FAILED tests/...::test_x - message" (not a captured log line "ERROR  ...").
    first = next((ln.split(" - ")[0] for ln in lines if re.match(r"(FAILED|ERROR) \S+::", ln)), "")
    return "failed", first or f"(pytest exited with {proc.returncode})", "\n".join(lines[-20:])


def table(results: list[dict]) -> str:
    rows = ["| mutant | file | what it breaks | result | first failing test / why equivalent |",
            "|---|---|---|---|---|"]
    for r in results:
        m = r["mutant"]
        if r["result"] == "survived" and m.equivalent:
            result, note = "survived (equivalent)", m.equivalent
        else:
            result, note = r["result"], r["first"]
        note = note.removeprefix("FAILED ").removeprefix("ERROR ").replace("|", "\\|")
        rows.append(f"| `{m.name}` | {Path(m.file).name} | {m.description} | {result} | {note} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="check that every mutant finds its line, and exit")
    parser.add_argument("--relocate", action="store_true",
                        help="point each mutant whose text moved (and occurs once in its file) at its new line")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--allow-dirty", action="store_true", help="run even if the mutated files have changes")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run counts as killed")
    parser.add_argument("--out", default="mutants-report.md", help="where to write the Markdown table")
    parser.add_argument("--docs", action="store_true",
                        help=f"also put the table into {DOCS} (between its mutants markers)")
    parser.add_argument("-v", "--verbose", action="store_true", help="stream pytest's output")
    args = parser.parse_args()

    if args.docs and args.only:
        parser.error("--docs takes the table of every mutant: not with --only")
    mutants = MUTANTS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTANTS}
        if unknown:
            parser.error(f"unknown mutants: {', '.join(sorted(unknown))}")
        mutants = [m for m in MUTANTS if m.name in args.only]
    if args.list:
        for m in mutants:
            print(f"{m.name:40} {f'{m.file}:{m.line}':46} {m.description}{'  [equivalent]' if m.equivalent else ''}")
        return 0
    if args.relocate:
        print(*relocate(mutants) or ["Every mutant is on its line."], sep="\n")
        return 0
    problems = check_mutants(mutants)
    if problems:
        print("Mutants not found where they say (a line moved, or is a mutant still applied?):", *problems,
              sep="\n  ")
        return 2
    print(f"{len(mutants)} mutants, each finds its text once on its line.")
    if args.check:
        return 0
    changed = dirty({m.file for m in mutants})
    if changed and not args.allow_dirty:
        print(f"Uncommitted changes in {', '.join(changed)}: commit them first (or --allow-dirty).")
        return 2
    if "DATABASE_URL" not in os.environ:
        print("Warning: DATABASE_URL is not set; pytest-django uses the default test database.")
    for n, files in enumerate(test_runs(), 1):
        print(f"pytest run {n}:", *files, sep="\n  ")

    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    results: list[dict] = []
    interrupted = False
    started = time.monotonic()
    try:
        if not args.no_baseline:
            print("baseline (no mutant) ...", end=" ", flush=True)
            t0 = time.monotonic()
            outcome, first, tail = run_suite(args.timeout, args.verbose)
            print(f"{outcome} in {time.monotonic() - t0:.0f} s")
            if outcome != "passed":
                print(f"The unmutated suite fails ({first}); fix that first.\n{tail}")
                return 1
        for n, m in enumerate(mutants, 1):
            print(f"[{n:>2}/{len(mutants)}] {m.name:40}", end=" ", flush=True)
            t0 = time.monotonic()
            path = ROOT / m.file
            pristine = path.read_text()
            try:
                path.write_text(mutated(m, pristine))
                outcome, first, _ = run_suite(args.timeout, args.verbose)
            finally:
                path.write_text(pristine)  # also on Ctrl-C, SIGTERM or an error
            result = "survived" if outcome == "passed" else "killed"
            if outcome == "timeout":
                result = "killed (timeout)"
            results.append({"mutant": m, "result": result, "first": first})
            label = result + (" (equivalent)" if result == "survived" and m.equivalent else "")
            print(f"{label:24} {time.monotonic() - t0:5.0f} s  {first.removeprefix('FAILED ')}", flush=True)
    except (KeyboardInterrupt, Stop):
        interrupted = True
        print("\nInterrupted: the mutated file is restored; the table covers the mutants run so far.")
    finally:
        leftover = check_mutants(mutants)
        if leftover:
            print("WARNING, a mutant no longer finds its text:", *leftover, sep="\n  ")

    killed = sum(r["result"].startswith("killed") for r in results)
    survived = [r["mutant"] for r in results if r["result"] == "survived"]
    real = [m.name for m in survived if not m.equivalent]
    summary = (f"{len(results)} mutants run in {(time.monotonic() - started) / 60:.1f} min: {killed} killed, "
               f"{len(survived)} survived ({len(survived) - len(real)} equivalent)")
    text = table(results)
    print(f"\n{text}\n\n{summary}")
    if real:
        print("Survived and not marked equivalent:", *real, sep="\n  ")
    (ROOT / args.out).write_text(f"{text}\n\n{summary}\n")
    print(f"Table written to {args.out}")
    if args.docs and not interrupted:
        docs = ROOT / DOCS
        before, rest = docs.read_text().split(BEGIN, 1)
        _, after = rest.split(END, 1)
        docs.write_text(f"{before}{BEGIN}\n{text}\n\n{summary}.\n{END}{after}")
        print(f"Table written to {DOCS}")
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main())
