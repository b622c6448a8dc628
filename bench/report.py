"""Turn a benchmark run's results into report.json, report.md and PNG plots."""
import contextlib
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (name, how to read it from the results, comparison, bound, unit); every row from the same run. Rows whose
# measurement a run lacks (a phase it skipped, or one the bench does not have yet) read as not measured.
TARGETS = [
    ("delivery stage, all-active probe (the app's Redis time)", lambda r: _stage(r), ">=", 250_000, "/s"),
    ("delivery stage vs the script ceiling", lambda r: _stage(r) / r["script_ceiling"]["script_per_s"]["median"],
     ">=", 0.8, "x"),
    ("the insert script vs pipelined LPUSH on the same distinct keys", lambda r: r["script_ceiling"]["script_vs_lpush"],
     ">=", 0.5, "x"),
    ("just-under-threshold author (49,999 followers), post → fully delivered",
     lambda r: _fanout_top(r)["seconds"] * 1000, "<=", 100, "ms"),
    ("the same fan-out on the 3-master cluster vs one server", lambda r: r["cluster_fanout"]["ratio"], "<=", 2, "x"),
    ("POST max vs the bare durable insert", lambda r: r["posts_closed"]["rps"] / r["bare_insert_closed"]["rps"],
     ">=", 0.5, "x"),
    ("POST max req/s vs the no-op", lambda r: r["posts_closed"]["rps"] / _best(r, "ping")["rps"], ">=", 0.15, "x"),
    ("timeline reads vs the authenticated no-op (max req/s)", lambda r: _ratio(r, "timeline", "ping"), ">=", 0.5, "x"),
    ("timeline p50 at 1 connection vs the no-op's (interleaved, at least 5 repetitions)",
     lambda r: _paired(r, "timeline")["p50"] / _paired(r, "ping")["p50"], "<=", 1.5, "x"),
    ("marginal server time of a timeline page vs the naive timeline's, at one open-loop rate",
     lambda r: _marginal(r)["ratio"], "<=", 0.1, "x"),
    ("read p99 during the 100:1 mix (open loop, 155 reads/s)", lambda r: r["propagation"]["reads"]["p99"],
     "<=", 50, "ms"),
    ("POST /v1/tweets p99 at half its max rate (open loop)", lambda r: r["posts_open"]["p99"], "<=", 50, "ms"),
    ("Redis bytes per cached timeline entry", lambda r: r["memory"]["bytes_per_entry"], "<=", 11, "B"),
    ("Mastodon home page p50 at 1 connection vs /v1/timeline/home's, same readers",
     lambda r: r["mastodon"]["p50_ratio"], "<=", 1.3, "x"),
    ("RSS of the whole stack (web, worker, beat) after the benchmark, default sizing",
     lambda r: r["stack_rss_mib"], "<=", 700, "MiB"),
    ("stream process memory per connection (PSS growth, all connections open)",
     lambda r: _stream_top(r)["pss_per_connection_kb"], "<=", 20, "KB"),
    ("post → stream event p99, author's connected followers, all connections open, during the 100:1 mix",
     lambda r: r["stream"]["under_mix"]["p99"], "<=", 100, "ms"),
    ("stream events delivered exactly once ((tweet, connected follower) pairs, every measurement)",
     lambda r: _stream_exactly_once(r), ">=", 1.0, "x"),
]
def _best(results: dict, name: str) -> dict:
    """The closed-loop run of ``name`` with the highest median req/s."""
    return max(results["reads_closed"][name], key=lambda x: x["rps"])


def _ratio(results: dict, a: str, b: str) -> float:
    return _best(results, a)["rps"] / _best(results, b)["rps"]


def _c1(results: dict, name: str) -> dict:
    return next(x for x in results["reads_closed"][name] if x["concurrency"] == 1)


def _p50_c1(results: dict, name: str) -> float:
    return _c1(results, name)["p50"]


def _paired(results: dict, name: str) -> dict:
    return results["p50_c1_paired"][name]


def _marginal(results: dict) -> dict:
    """Server CPU per request (every group but the generator's), timeline and naive minus the no-op, all three at
    the same open-loop rate."""
    from bench.machine import marginal_ratio

    matched = results["marginal_matched"]
    cpu = {name: matched[name]["server_cpu_ms"] / 1000 for name in ("timeline", "naive", "ping")}
    return marginal_ratio(page=cpu["timeline"], naive=cpu["naive"], noop=cpu["ping"])


def _stage(results: dict) -> float:
    """The delivery stage's timelines a second: the largest all-active fan-out probe's timelines addressed over the
    app's Redis time writing them."""
    probe = max((row for row in results["fanout"] if row.get("all_active")), key=lambda row: row["followers"])
    return probe["timings"]["addressed"] / (probe["timings"]["redis_ms"] / 1000)


def _fanout_top(results: dict) -> dict:
    """The author with the most followers whose tweets are pushed (not the all-active probe)."""
    pushed = [row for row in results["fanout"] if not row.get("pulled") and not row.get("all_active")]
    return max(pushed, key=lambda row: row["followers"])


def _stream_top(results: dict) -> dict:
    """The stream phase's measurement at the most connections."""
    return max(results["stream"]["levels"], key=lambda row: row["connections"])


def _stream_rows(results: dict) -> list[dict]:
    stream = results["stream"]
    return [*stream["levels"], *([stream["under_mix"]] if stream.get("under_mix") else [])]


def _stream_exactly_once(results: dict) -> float:
    """The share of (tweet, connected follower) pairs whose event came once: neither missing nor repeated."""
    rows = _stream_rows(results)
    pairs = sum(row["pairs"] for row in rows)
    return 1 - sum(row["missing"] + row["duplicates"] for row in rows) / pairs


def _lo(s: dict, key: str) -> float:
    return s.get(f"{key}_min", s[key])


def _hi(s: dict, key: str) -> float:
    return s.get(f"{key}_max", s[key])


def _mix_p99(r: dict) -> dict:
    return r["propagation"]["reads"]


# The spread of a target over the repetitions, (low, high): a figure's own min-max, and for a ratio the widest
# the repetitions allow (the numerator's min over the denominator's max, and the other way round).
RANGES = {
    "timeline reads vs the authenticated no-op (max req/s)":
        lambda r: (_lo(_best(r, "timeline"), "rps") / _hi(_best(r, "ping"), "rps"),
                   _hi(_best(r, "timeline"), "rps") / _lo(_best(r, "ping"), "rps")),
    "timeline p50 at 1 connection vs the no-op's (interleaved, at least 5 repetitions)":
        lambda r: (_lo(_paired(r, "timeline"), "p50") / _hi(_paired(r, "ping"), "p50"),
                   _hi(_paired(r, "timeline"), "p50") / _lo(_paired(r, "ping"), "p50")),
    "read p99 during the 100:1 mix (open loop, 155 reads/s)": lambda r: (_lo(_mix_p99(r), "p99"),
                                                                         _hi(_mix_p99(r), "p99")),
    "just-under-threshold author (49,999 followers), post → fully delivered":
        lambda r: (1000 * _lo(_fanout_top(r), "seconds"), 1000 * _hi(_fanout_top(r), "seconds")),
    "POST /v1/tweets p99 at half its max rate (open loop)": lambda r: (_lo(r["posts_open"], "p99"),
                                                                       _hi(r["posts_open"], "p99")),
    "POST max vs the bare durable insert":
        lambda r: (_lo(r["posts_closed"], "rps") / _hi(r["bare_insert_closed"], "rps"),
                   _hi(r["posts_closed"], "rps") / _lo(r["bare_insert_closed"], "rps")),
    "POST max req/s vs the no-op": lambda r: (_lo(r["posts_closed"], "rps") / _hi(_best(r, "ping"), "rps"),
                                              _hi(r["posts_closed"], "rps") / _lo(_best(r, "ping"), "rps")),
    "the insert script vs pipelined LPUSH on the same distinct keys":
        lambda r: (r["script_ceiling"]["script_per_s"]["min"] / r["script_ceiling"]["lpush_per_s"]["max"],
                   r["script_ceiling"]["script_per_s"]["max"] / r["script_ceiling"]["lpush_per_s"]["min"]),
}
assert set(RANGES) <= {row[0] for row in TARGETS}, "a range names no target"


def evaluate(results: dict) -> list[dict]:
    rows = []
    for name, read, op, bound, unit in TARGETS:
        try:
            value = float(read(results))
        except (KeyError, ValueError, ZeroDivisionError, TypeError, StopIteration):
            value = math.nan
        met = not math.isnan(value) and (value >= bound if op == ">=" else value <= bound)
        spread = None
        if name in RANGES and not math.isnan(value):
            with contextlib.suppress(KeyError, ValueError, ZeroDivisionError, TypeError, StopIteration):
                spread = [round(float(x), 3) for x in RANGES[name](results)]
        rows.append({"target": name, "measured": None if math.isnan(value) else round(value, 3),
                     "range": spread, "goal": f"{op} {bound:,} {unit}".strip(), "unit": unit, "met": met})
    return rows


def write_report(results: dict, latencies: dict[str, list[float]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = evaluate(results)
    with contextlib.suppress(KeyError, TypeError, ValueError, ZeroDivisionError):
        results["marginal"] = _marginal(results)
    plots = []
    if latencies:
        plots.append(_plot_latency(latencies, out / "latency.png"))
        (out / "latencies.json").write_text(json.dumps(latencies))
    elif (out / "latency.png").exists():
        plots.append(out / "latency.png")  # re-rendered without the raw latencies: keep the plot drawn then
    if "reads_closed" in results:
        plots.append(_plot_throughput(results["reads_closed"], out / "throughput.png"))
    if results.get("fanout"):
        threshold = results.get("meta", {}).get("dataset", {}).get("threshold")
        plots.append(_plot_fanout(results["fanout"], out / "fanout.png", threshold))
    if results.get("followee_growth"):
        plots.append(_plot_growth(results["followee_growth"], "followees", "reader's followees (log scale)",
                                  "Read latency against the reader's followees (1 connection)",
                                  out / "growth-followees.png", log=True))
    if results.get("depth_growth"):
        plots.append(_plot_growth(results["depth_growth"], "page", "page",
                                  "Read latency against page depth (1 connection)", out / "growth-depth.png"))
    if (results.get("stream") or {}).get("levels"):
        plots.append(_plot_stream(results["stream"], out / "stream.png"))
    (out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text(_markdown(results, [p.name for p in plots]))


def _plot_latency(latencies: dict[str, list[float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, values in latencies.items():
        if not values:
            continue
        xs = sorted(values)
        ys = [100 * (i + 1) / len(xs) for i in range(len(xs))]
        ax.plot(xs, ys, label=f"{label} (n={len(xs):,})", linewidth=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("percentile")
    ax.axhline(99, color="grey", linewidth=0.6, linestyle=":")
    ax.set_title("Latency distribution (cumulative)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_throughput(reads: dict[str, list[dict]], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, rows in reads.items():
        conc = [r["concurrency"] for r in rows]
        left.plot(conc, [r["rps"] for r in rows], marker="o", label=name)
        right.plot(conc, [r["p99"] for r in rows], marker="o", label=name)
    for ax, label in ((left, "requests/s"), (right, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections (closed loop)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    right.set_yscale("log")
    left.set_title("Throughput against concurrency")
    right.set_title("Tail latency against concurrency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_fanout(rows: list[dict], path: Path, threshold: int | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for label, keep, marker in (("pushed (20% of followers active)", lambda r: not r.get("pulled")
                                 and not r.get("all_active"), "o"),
                                ("pushed, every follower active", lambda r: r.get("all_active"), "s"),
                                ("pulled (above the celebrity threshold)", lambda r: r.get("pulled"), "^")):
        chosen = sorted((r for r in rows if keep(r)), key=lambda r: r["followers"])
        if not chosen:
            continue
        xs = [r["followers"] for r in chosen]
        ys = [1000 * r["seconds"] for r in chosen]
        low = [1000 * (r["seconds"] - (r.get("seconds_min") or r["seconds"])) for r in chosen]
        high = [1000 * ((r.get("seconds_max") or r["seconds"]) - r["seconds"]) for r in chosen]
        ax.errorbar(xs, ys, yerr=[low, high], marker=marker, capsize=3, label=label,
                    linestyle="-" if marker == "o" else "none")
    if threshold:
        ax.axvline(threshold, color="grey", linewidth=0.8, linestyle=":", label="celebrity threshold")
    ax.axhline(250, color="red", linewidth=0.8, linestyle="--", label="250 ms target (49,999 followers)")
    ax.set_xscale("log")
    ax.set_xlabel("author's followers (log scale)")
    ax.set_ylabel("post to fully delivered (ms; median, min–max)")
    ax.set_title("Fan-out completion time against follower count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_stream(stream: dict, path: Path) -> Path:
    """Post → event latency, and the stream process's memory per connection, against the connections open."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    rows = sorted(stream["levels"], key=lambda r: r["connections"])
    xs = [r["connections"] for r in rows]
    for q, marker in (("p50", "o"), ("p99", "s"), ("max", "^")):
        left.plot(xs, [r.get(q) for r in rows], marker=marker, label=f"{q}, the author posting alone")
    mix = stream.get("under_mix")
    if mix and mix.get("p99") is not None:
        left.plot([mix["connections"]] * 2, [mix["p50"], mix["p99"]], linestyle="none", marker="*", markersize=11,
                  color="black", label="p50 and p99 during the 100:1 mix")
    left.axhline(100, color="red", linewidth=0.8, linestyle="--", label="100 ms target (p99)")
    left.set_ylabel("post sent → event arrived (ms)")
    left.set_title("Post to stream event against connections open")
    right.plot(xs, [r.get("pss_per_connection_kb") for r in rows], marker="o", label="PSS")
    right.plot(xs, [r.get("rss_per_connection_kb") for r in rows], marker="s", label="RSS")
    right.axhline(20, color="red", linewidth=0.8, linestyle="--", label="20 KB target")
    right.set_ylabel("stream process growth per connection (KB)")
    right.set_title("Memory per connection against connections open")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)  # the targets' lines in view
        ax.set_xlabel("connections open (half SSE, half WebSocket; log scale)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_growth(rows: list[dict], key: str, xlabel: str, title: str, path: Path, log: bool = False) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = [r[key] for r in rows] if log else list(range(len(rows)))
    for q, marker in (("p50", "o"), ("p99", "s")):
        ys = [r[q] for r in rows]
        low = [r[q] - (r.get(f"{q}_min") if r.get(f"{q}_min") is not None else r[q]) for r in rows]
        high = [(r.get(f"{q}_max") if r.get(f"{q}_max") is not None else r[q]) - r[q] for r in rows]
        ax.errorbar(xs, ys, yerr=[low, high], marker=marker, capsize=3, label=q)
    if log:
        ax.set_xscale("log")
    else:
        ax.set_xticks(xs, [r[key] for r in rows])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("latency (ms; median of the repetitions, min–max)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _script_ceiling_lines(r: dict) -> list[str]:
    """The script ceiling beside LPUSH on the same keys, and the delivery stage (the all-active probe's
    timelines a second of the app's Redis time) against it."""
    sc = r.get("script_ceiling")
    if not sc:
        return []
    script, lpush = sc["script_per_s"], sc["lpush_per_s"]
    lines = [f"Script ceiling: the production insert script, from one client, on {sc['timelines']:,} copies of "
             f"cached timelines ({sc['mean_bytes']:,} B each), {sc['rounds']} tweets into each: "
             f"{script['median']:,.0f} timelines/s ({script['min']:,.0f}–{script['max']:,.0f}); pipelined LPUSH "
             f"on the same keys, interleaved: {lpush['median']:,.0f}/s ({lpush['min']:,.0f}–{lpush['max']:,.0f}). "
             f"The script runs at **{sc['script_vs_lpush']:.2f}×** LPUSH."]
    probes = [x["timings"] for x in r.get("fanout", []) if x.get("all_active") and x.get("timings")]
    if probes and probes[-1].get("redis_ms"):
        t = probes[-1]
        stage = t["addressed"] / (t["redis_ms"] / 1000)
        lines[-1] += (f" The delivery stage (the largest all-active probe: {t['addressed']:,.0f} timelines in "
                      f"{t['redis_ms']:.1f} ms of the app's Redis time) writes {stage:,.0f} timelines/s, "
                      f"**{stage / script['median']:.2f}×** the script ceiling.")
    return [*lines, ""]


def _cluster_fanout_lines(r: dict) -> list[str]:
    """The same fan-out (``insert_lists``) on a 3-master cluster and on one server, side by side."""
    cf = r.get("cluster_fanout")
    if not cf:
        return []
    one, cluster, per_slot = cf["one_server_ms"], cf["cluster_ms"], cf["cluster_per_slot_ms"]
    return ["## The same fan-out on a Redis Cluster", "",
            f"One tweet id inserted into {cf['timelines']:,} cached timelines ({cf['mean_bytes']:,} B each, copies "
            f"of {cf['distinct_lists']:,} distinct ones) with "
            f"`insert_lists`, on a throwaway 3-master cluster and on one standalone server (redis-server "
            f"{cf['redis']} both), interleaved, median of {cf['rounds']} rounds: one server {one['median']:.1f} ms "
            f"({one['min']:.1f}–{one['max']:.1f}; {cf['one_server_calls']} script calls), cluster "
            f"{cluster['median']:.1f} ms ({cluster['min']:.1f}–{cluster['max']:.1f}; {cf['cluster_calls']} calls, "
            f"one per node and {cf['chunk']:,} keys): **{cf['ratio']:.2f}×**. "
            f"The same keys per slot (one call each, as a cluster fan-out was sent before): "
            f"{per_slot['median']:.1f} ms "
            f"({cf['cluster_per_slot_calls']:,} calls), {cf['per_slot_ratio']:.2f}×.", ""]


def _n(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _range(s: dict, key: str, digits: int = 1) -> str:
    """``median (min–max)`` of a combined run's figure."""
    lo, hi = s.get(f"{key}_min"), s.get(f"{key}_max")
    if lo is None or hi is None:
        return _n(s.get(key), digits)
    return f"{_n(s.get(key), digits)} ({_n(lo, digits)}–{_n(hi, digits)})"


def _row(label: str, s: dict) -> str:
    return (f"| {label} | {_range(s, 'rps', 0)} | {_range(s, 'p50')} | {_n(s.get('p95'))} | {_range(s, 'p99')} | "
            f"{s.get('errors', 0):.0f} | {_n(s.get('server_cpu_ms'), 2)} | {100 * (s.get('cpu_share') or 0):.0f}% |")


HEADER = ["| run | req/s median (min–max) | p50 ms (min–max) | p95 ms | p99 ms (min–max) | errors | "
          "server CPU ms/req | generator CPU |", "|---|---|---|---|---|---|---|---|"]


def _contamination_lines(r: dict) -> list[str]:
    found = r.get("contamination") or []
    if not found:
        return ["Machine: quiet throughout (nothing outside the stack and the generator used more than a tenth of a "
                "core before or during any measured run).", ""]
    names: dict[str, float] = {}
    for entry in found:
        for proc in entry.get("processes", []):
            names[proc["name"]] = max(names.get(proc["name"], 0.0), proc["cores"])
    busiest = sorted(names.items(), key=lambda kv: -kv[1])[:8]
    return ["# CONTAMINATED", "",
            f"**{len(found)} measured run(s) had processes outside the stack and the generator using more than a "
            "tenth of a core** (after waiting for a quiet machine as long as the profile allows). These figures are "
            "not results. Busiest outside processes (peak cores):", "",
            *[f"- `{name}`: {cores:.2f} cores" for name, cores in busiest], "",
            "Runs affected: " + ", ".join(sorted({e["run"] for e in found})[:30])
            + (" ..." if len(found) > 30 else ""), ""]


def _speed_lines(speed: dict) -> list[str]:
    """The machine's speed before and after the phases (``machine.speed``), if the run measured it."""
    if not speed:
        return []
    when = [w for w in ("before", "after") if w in speed]
    python = " → ".join(f"{speed[w]['python_ms']:.2f} ms" for w in when)
    trip = " → ".join(f"{speed[w]['round_trip_us']:.1f} µs" for w in when)
    return [f"Machine speed ({' → '.join(when)} the phases, `bench.machine.speed`): a fixed piece of pure-Python "
            f"work {python}; a byte's round trip to another process over pipes {trip}. Absolute figures compare "
            "only between runs whose speeds agree; each ratio below is taken within this run.", ""]


def _kb(value) -> str:
    return "–" if value is None else f"{value:,.1f}"


def _stream_lines(st: dict) -> list[str]:
    kinds = ", ".join(f"{n:,} {k}" for k, n in st.get("kinds", {}).items())
    lines = ["## Live timelines (the stream process)", "",
             f"{st['connections_wanted']:,} connections wanted ({kinds}), one a user, opened "
             f"{st['open_rate']}/s from the generator's event loop, to the stream process on port {st['port']}. "
             f"Author {st['author']} posts {st['posts_per_level']} times, {st['post_interval_s']} s apart, at each "
             f"connection count; {st['followers']:,} of the connected users (the first connections) follow them "
             f"(of its {st.get('author_followers', st['followers']):,} followers: the data set's fan-out probe). "
             "Latency: the event's arrival at the follower's connection minus the POST's sending; every (tweet, "
             "connected follower) pair is matched (missing and duplicate events counted). First event: the median "
             "over the tweets of the time to the tweet's first event; first → last: the median time from a tweet's "
             "first event to its last (the stream process writing it to every follower).", "",
             "| connections open | followers connected | posts | pairs | p50 ms | p90 ms | p99 ms | max ms | "
             "first event ms | first → last ms | missing | duplicates | PSS MB | PSS KB/conn | RSS KB/conn | "
             "opening failures |", "|---" * 16 + "|"]
    for row in sorted(st["levels"], key=lambda x: x["connections"]):
        lines.append(f"| {row['connections']:,} | {row['followers_connected']:,} | {row['posts']} | "
                     f"{row['pairs']:,} | {_n(row.get('p50'))} | {_n(row.get('p90'))} | {_n(row.get('p99'))} | "
                     f"{_n(row.get('max'))} | {_n(row.get('first_ms_median'))} | {_n(row.get('spread_ms_median'))} | "
                     f"{row['missing']} | {row['duplicates']} | {_n(row.get('pss_mb'))} | "
                     f"{_kb(row.get('pss_per_connection_kb'))} | {_kb(row.get('rss_per_connection_kb'))} | "
                     f"{row.get('failed', 0)}{' ' + str(row['open_errors']) if row.get('open_errors') else ''} |")
    mix = st.get("under_mix")
    if mix:
        lines.append(f"| {mix['connections']:,}, during the 100:1 mix (a post every {mix.get('interval_s', '?')} s, "
                     f"{mix.get('events_per_s', 0):,} events/s) | | {mix['posts']} | {mix['pairs']:,} | "
                     f"{_n(mix.get('p50'))} | {_n(mix.get('p90'))} | {_n(mix.get('p99'))} | {_n(mix.get('max'))} | "
                     f"{_n(mix.get('first_ms_median'))} | {_n(mix.get('spread_ms_median'))} | "
                     f"{mix['missing']} | {mix['duplicates']} | | | | |")
    lines.append("")
    kinds = [row for row in _stream_rows({"stream": st}) if row.get("by_kind")]
    if kinds:
        lines += ["By kind of connection (p50 / p99 ms; a tweet's first event, and first → last, medians):", "",
                  "| connections open | " + " | ".join(kinds[0]["by_kind"]) + " |",
                  "|---" * (len(kinds[0]["by_kind"]) + 1) + "|"]
        for row in kinds:
            label = f"{row['connections']:,}" + (", during the mix" if row is mix else "")
            lines.append(f"| {label} | " + " | ".join(
                f"{_n(k.get('p50'))} / {_n(k.get('p99'))} (first {_n(k.get('first_ms_median'))}, "
                f"+{_n(k.get('spread_ms_median'))}; {k.get('missing', 0)} missing)"
                for k in row["by_kind"].values()) + " |")
        lines.append("")
    lags = [row for row in _stream_rows({"stream": st}) if row.get("generator_lag")]
    if lags:
        lines += ["The clients' event loop (in the generator) woke from a 10 ms sleep late by, p99 / max: " + ", ".join(
            f"{_n(row['generator_lag']['p99_ms'])} / {_n(row['generator_lag']['max_ms'])} ms at "
            f"{row['connections']:,}" + (" (the mix)" if row is mix else "") for row in lags)
                  + ". Events reaching it while late are timestamped late by as much.", ""]
    before, after = st.get("memory_before"), st.get("memory_after")
    if before and after:
        lines += [f"Stream process memory before any connection: RSS {before['rss'] / 1e6:.1f} MB, PSS "
                  f"{before['pss'] / 1e6:.1f} MB; with every connection open: RSS {after['rss'] / 1e6:.1f} MB, PSS "
                  f"{after['pss'] / 1e6:.1f} MB (" + ", ".join(
                      f"pid {p['pid']}: PSS {p['pss'] / 1e6:.1f} MB" for p in after["processes"])
                  + "). Per connection = growth since before ÷ connections open, KB of 1,000 bytes.", ""]
    gen = st.get("generator")
    if gen:
        lines += [f"The generator (holding the connections): RSS {gen['rss_before'] / 1e6:.0f} → "
                  f"{gen['rss_after'] / 1e6:.0f} MB; its clients' thread used {gen['clients_cpu_s']} CPU s over the "
                  "connection counts' measurements.", ""]
    rows = _stream_rows({"stream": st})
    checks = [row["minted_after_send_ms"] for row in rows if row.get("minted_after_send_ms")]
    if checks:
        lines += ["Cross-check: the tweet ids' Snowflake times came "
                  f"{min(c['min'] for c in checks):.1f}–{max(c['max'] for c in checks):.1f} ms after the POSTs' "
                  "sending; from the ids' times, p99 " + ", ".join(
                      f"{_n(row['from_id_time'].get('p99'))} ms at {row['connections']:,}"
                      for row in rows if row.get("from_id_time")) + ".", ""]
    if st.get("closed_during_phase"):
        lines += ["Connections the server closed during the phase: " + ", ".join(
            f"{n} {why}" for why, n in st["closed_during_phase"].items()) + ".", ""]
    if st.get("mix_closed") and st.get("mix_open"):
        closed, opened = st["mix_closed"], st["mix_open"]
        n = f"{mix['connections']:,}" if mix else "all"
        lines += ["The 100:1 mix with no stream open, then with every connection open (the author posting too):", "",
                  *HEADER, _row("reads, no streams", closed["reads"]),
                  _row(f"reads, {n} streams open", opened["reads"]),
                  _row("posts, no streams", closed["writes"]), _row(f"posts, {n} streams open", opened["writes"]), "",
                  f"Post to visible in sampled followers' cached timelines: p99 {_n(closed['p99_ms'], 0)} ms with no "
                  f"streams, {_n(opened['p99_ms'], 0)} ms with them.", ""]
    return lines


def _markdown(r: dict, plots: list[str]) -> str:
    meta, lines = r["meta"], []
    ds = meta.get("dataset", {})
    lines += _contamination_lines(r)
    seeded = (f"reused (seeded earlier in {ds.get('seconds', 0)} s; reset and re-warmed in "
              f"{ds.get('reuse_seconds', 0)} s)" if ds.get("reused") else f"seeded in {ds.get('seconds', 0)} s")
    lines += [
        f"# Benchmark report — {meta['started']} ({meta['profile']} profile)",
        "",
        f"Machine: {meta['cpus']} cores, Python {meta['python']}, {meta['machine']}. The load generator runs on the "
        "same machine. Every figure is the median of "
        f"{meta.get('repetitions', 1)} repetitions of {meta.get('seconds_per_run', '?')} s runs, with the min–max "
        f"beside it. Run took {meta.get('seconds', 0):.0f} s ({meta.get('measuring_seconds', 0):.0f} s measuring).",
        "",
        *_speed_lines(meta.get("speed", {})),
        f"Data set: {ds.get('users', 0):,} users, {ds.get('follows', 0):,} follows, {ds.get('tweets', 0):,} tweets "
        f"over 30 days, {ds.get('active_users', 0):,} active users with a cached timeline, celebrity threshold "
        f"{ds.get('threshold', 0):,} (celebrities: {len(ds.get('celebrities', []))}); {seeded}.",
        "",
        "Stack (as `make run` starts it):",
        "",
        *[f"- {name}: `{cmd}`" for name, cmd in meta.get("stack", {}).items()],
        "",
    ]
    if r.get("targets"):
        lines += ["## Targets", "", "Each from this run: the median of the repetitions, and in brackets the "
                  "widest range the repetitions allow.", "",
                  "| target | goal | measured (range) | met |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['goal']} | "
                  + ("not measured | – |" if t["measured"] is None else
                     f"{t['measured']:,} {t['unit']}"
                     + (f" ({t['range'][0]:,}–{t['range'][1]:,})" if t.get("range") else "")
                     + f" | {'yes' if t['met'] else 'NO'} |")
                  for t in r["targets"]]
        if r.get("marginal"):
            m = r["marginal"]
            lines += ["", f"Marginal server time over the no-op (CPU of web, worker, beat, Redis, PostgreSQL and S3 "
                      f"per request, minus the no-op's): timeline page {m['page_ms']:.3f} ms, naive SQL timeline "
                      f"{m['naive_ms']:.3f} ms."]
        lines.append("")
    if r.get("phase_cpu"):
        groups = ["web", "stream", "worker", "beat", "redis", "postgres", "s3", "generator", "kernel", "other"]
        lines += ["## CPU seconds by process group, per phase", "",
                  "| phase | wall s | " + " | ".join(groups) + " |", "|---" * (len(groups) + 2) + "|"]
        lines += [f"| {name} | {c['seconds']:.0f} | " + " | ".join(f"{c.get(g, 0):.1f}" for g in groups) + " |"
                  for name, c in r["phase_cpu"].items()]
        lines += ["", "`other` is everything outside the stack and the generator (it decides contamination); "
                  "`kernel` is kernel threads (network softirq work the load itself causes).", ""]
    if "reads_closed" in r:
        lines += ["## Reads, closed loop (`limit=20`, random active users)", "", *HEADER]
        for name, rows in r["reads_closed"].items():
            lines += [_row(f"{name}, {row['concurrency']} connections", row) for row in rows]
        lines += ["", "`timeline` is `GET /v1/timeline/home`; `ping` an authenticated DRF no-op on the same server "
                  "(the framework's ceiling); `naive` the fan-out-on-read SQL timeline on the same data. Server CPU "
                  "is the CPU seconds of web, worker, beat, Redis, PostgreSQL and S3 over the run, per request.", ""]
    extra = [("posts_closed", "POST /v1/tweets, closed, 8 connections"),
             ("posts_open", "POST /v1/tweets, open loop at half the max")]
    if any(k in r for k, _ in extra):
        lines += ["## Posts", "", *HEADER]
        lines += [_row(label, r[k]) for k, label in extra if k in r]
        lines.append("")
    if r.get("followee_growth") or r.get("depth_growth"):
        lines += ["## How a read's cost grows (1 connection)", "", *HEADER]
        lines += [_row(f"reader of {row['followees']:,} followees", row) for row in r.get("followee_growth", [])]
        lines += [_row(f"{row['page']} ({row['users']:,} readers)", row) for row in r.get("depth_growth", [])]
        lines.append("")
    if r.get("fanout"):
        recorded = r.get("fanout_timings_recorded")
        lines += ["## Fan-out", "",
                  "| followers | cached timelines written | post → fully delivered ms (min–max) | deliveries/s | "
                  "server CPU s | script calls | script ms in Redis | addressed | queued ms | pg ms | redis ms | "
                  "overhead ms | batches | app's done ms |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for x in r["fanout"]:
            t = x.get("timings") or {}
            kind = " (all active)" if x.get("all_active") else " (pulled)" if x.get("pulled") else ""
            cells = ([_n(t.get("addressed"), 0)] + [_n(t.get(k), 1) for k in ("queued_ms", "pg_ms", "redis_ms",
                                                                              "overhead_ms")]
                     + [_n(t.get("batches"), 0), _n(t.get("done_ms"), 1)]) if t else ["not recorded"] + [""] * 6
            rate = "pulled: none" if x.get("deliveries_per_s") is None else f"{x['deliveries_per_s']:,}"
            lines.append(f"| {x['followers']:,}{kind} | {x['cached_timelines']:,} | {1000 * x['seconds']:.0f} "
                         f"({1000 * (x.get('seconds_min') or x['seconds']):.0f}–"
                         f"{1000 * (x.get('seconds_max') or x['seconds']):.0f}) | {rate} | "
                         f"{_n(x.get('server_cpu_s'), 2)} | {_n(x.get('script_calls'), 0)} | "
                         f"{_n(x.get('script_ms'), 1)} | " + " | ".join(cells) + " |")
        c = r.get("lpush_ceiling")
        lines += [""]
        if not recorded:
            lines += ["Per-fan-out breakdown: not recorded by this run.", ""]
        else:
            lines += ["The breakdown is the bench's record of each fan-out (`bench.fanout_timings`, from the app's "
                      "`fanout_batch_done` signal), the median over the repetitions: queued = post commit to the "
                      "coordinator starting; addressed = the timelines the insert script was given (the followers "
                      "who may have one, by the live-timeline bitmaps, and the author); pg = reading the followers; "
                      "redis = the live filter and the timeline writes; overhead = the rest of the "
                      "workers' time (Celery messages, bookkeeping); done = post to the last batch written. A pulled "
                      "tweet is written to no follower: its time is the post and the author's list. Script calls "
                      "and their time are the server's own count (`INFO commandstats` before and after each "
                      "fan-out: EVAL, EVALSHA and FCALL, whoever sent them in that window).", ""]
        if c:
            lines += [f"Raw ceiling of the same Redis server: {c['ops_per_s']:,.0f} LPUSH/s "
                      f"({_n(c.get('ops_per_s_min'), 0)}–{_n(c.get('ops_per_s_max'), 0)}; `{c['tool']}`).", ""]
        lines += _script_ceiling_lines(r)
    lines += _cluster_fanout_lines(r)
    if "propagation" in r:
        p = r["propagation"]
        lines += ["## The 100:1 read/write mix (open loop)", "", *HEADER,
                  _row("reads", p["reads"]), _row("posts", p["writes"]), "",
                  f"Post to visible in sampled followers' cached timelines: p50 {_n(p['p50_ms'], 0)} ms, "
                  f"p99 {_n(p['p99_ms'], 0)} ms ({_n(p.get('p99_ms_min'), 0)}–{_n(p.get('p99_ms_max'), 0)}) over "
                  f"{p['samples']} tweets.", ""]
    if (r.get("stream") or {}).get("levels"):
        lines += _stream_lines(r["stream"])
    if r.get("webservers"):
        lines += ["## Web servers (same stack, same run)", "",
                  "| server | endpoint | max req/s (min–max) | p50 at 1 connection ms (min–max) | "
                  "server CPU ms/req at max |", "|---|---|---|---|---|"]
        for w in r["webservers"]:
            if "error" in w:
                lines.append(f"| {w['server']} | – | did not start: {w['error']} | | |")
                continue
            for name in ("ping", "timeline"):
                top, one = w.get(f"{name}_max"), w.get(f"{name}_c1")
                if top and one:
                    lines.append(f"| {w['server']} | {name} | {_range(top, 'rps', 0)} | {_range(one, 'p50', 2)} | "
                                 f"{_n(top.get('server_cpu_ms'), 2)} |")
        lines += ["", *[f"- {w['server']}: `{w['command']}`" for w in r["webservers"] if w.get("command")], ""]
    if "memory" in r:
        m = r["memory"]
        lines += ["## Redis memory", "",
                  f"- {m['bytes_per_entry']} bytes per cached timeline entry (`MEMORY USAGE` over "
                  f"{m['timelines_sampled']:,} timelines of {m['mean_entries']} entries on average)",
                  f"- {m['bytes_per_active_user']:,} bytes of timeline keys per active user; "
                  f"{m['used_memory_per_active_user']:,} bytes of all Redis memory per active user", ""]
        fam = m.get("families")
        if fam:
            lines += ["| key family | keys | sampled | bytes per key | bytes (estimate) | per active user |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {f['family']} | {f['keys']:,} | {f['sampled']:,} | {f['bytes_per_key']:,} | "
                      f"{f['bytes']:,} | {_n(f['bytes_per_active_user'])} |" for f in fam["families"]]
            lines += [f"| server overhead and the rest of used_memory | | | | {fam['unexplained_bytes']:,} | "
                      f"{_n(fam['unexplained_per_active_user'])} |", "",
                      "Families by the key name's first segment (`SCAN`), each weighed by `MEMORY USAGE` over a "
                      "sample of up to 300 keys; bytes = keys × the sample's mean.", ""]
    if r.get("mastodon"):
        m = r["mastodon"]
        cpu = m["cpu_ms_per_request"]
        groups = [g for g in ("web", "redis", "postgres", "server") if g in cpu["v1"]]
        lines += ["## The Mastodon API's home timeline beside /v1 (same readers)", "",
                  "| endpoint | p50 at 1 connection ms (min–max) | max req/s at 8 connections | "
                  + " | ".join(f"{g} CPU ms/page" for g in groups) + " | page bytes |",
                  "|---|---|---|" + "---|" * len(groups) + "---|"]
        for name, path in (("v1", "/v1/timeline/home"), ("mastodon", "/api/v1/timelines/home")):
            lines.append(f"| `{path}` | {_range(m['paired'][name], 'p50', 2)} | {_n(m['max_rps_c8'][name], 0)} | "
                         + " | ".join(_n(cpu[name][g], 3) for g in groups) + f" | {m['page_bytes'][name]:,} |")
        lines += ["", f"{m['readers']} readers, each holding a `/v1` JWT and an OAuth token; CPU a page at "
                  f"{m['open_rate']} req/s (open loop) for both, medians of the repetitions.", ""]
    if r.get("stack_memory"):
        lines += ["## Memory of the stack's processes after the benchmark (default sizing)", "",
                  "| group | processes | RSS MiB | PSS MiB | USS MiB |", "|---|---|---|---|---|"]
        lines += [f"| {g} | {m['processes']} | {m['rss_mib']:,.0f} | {m['pss_mib']:,.0f} | {m['uss_mib']:,.0f} |"
                  for g, m in r["stack_memory"].items()]
        lines += ["", "RSS counts a page shared by forked processes once in each; PSS divides it among them.", ""]
    if r.get("post_profile"):
        pp = r["post_profile"]
        lines += ["## Where a post's time goes (py-spy on the web workers under POST load)", "",
                  "| part | share of the request samples |", "|---|---|"]
        lines += [f"| {g['group']} | {100 * g['share']:.1f}% |" for g in pp["groups"]]
        lines += ["", f"{pp['samples']:,} samples inside a request; each is put in the first group (in the table's "
                  f"order) one of its frames names (`bench/profiles.py`). Full collapsed stacks: `{pp['file']}`.", ""]
    if plots:
        lines += ["## Plots", "", *[f"![{p}]({p})" for p in plots], ""]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    # Re-render a run's report from its report.json (and latencies.json, if kept).
    directory = Path(sys.argv[1])
    saved = directory / "latencies.json"
    write_report(json.loads((directory / "report.json").read_text()),
                 json.loads(saved.read_text()) if saved.exists() else {}, directory)
