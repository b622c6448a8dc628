"""Turn a benchmark run's results into report.json, report.md and PNG plots."""
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# (name, how to read it from the results, comparison, bound, unit)
TARGETS = [
    ("timeline reads vs trivial endpoint (max req/s)", lambda r: _ratio(r, "timeline", "ping"), ">=", 0.5, "x"),
    ("timeline reads vs naive SQL timeline (max req/s)", lambda r: _ratio(r, "timeline", "naive"), ">=", 10, "x"),
    ("timeline read p99 at half the max rate (open loop)", lambda r: r["reads_open"]["p99"], "<=", 50, "ms"),
    ("POST /v1/tweets p99 at half its max rate (open loop)", lambda r: r["posts_open"]["p99"], "<=", 50, "ms"),
    ("fan-out deliveries/s (largest author)", lambda r: _fanout_top(r)["deliveries_per_s"], ">=", 200_000, "/s"),
    ("fan-out vs raw pipelined LPUSH", lambda r: _fanout_top(r)["deliveries_per_s"] / r["lpush_ceiling"]["ops_per_s"],
     ">=", 0.4, "x"),
    ("just-under-threshold author fully delivered", lambda r: _fanout_top(r)["seconds"] * 1000, "<=", 1000, "ms"),
    ("propagation p99 during the 100:1 mix", lambda r: r["propagation"]["p99_ms"], "<=", 1000, "ms"),
    ("Redis bytes per cached timeline entry", lambda r: r["memory"]["bytes_per_entry"], "<=", 11, "B"),
]


def _ratio(results: dict, a: str, b: str) -> float:
    best = {name: max(x["rps"] for x in rows) for name, rows in results["reads_closed"].items()}
    return best[a] / best[b]


def _fanout_top(results: dict) -> dict:
    """The median run of the author with the most followers."""
    top = max(row["followers"] for row in results["fanout"])
    runs = sorted((row for row in results["fanout"] if row["followers"] == top), key=lambda row: row["seconds"])
    return runs[len(runs) // 2]


def evaluate(results: dict) -> list[dict]:
    rows = []
    for name, read, op, bound, unit in TARGETS:
        try:
            value = float(read(results))
        except (KeyError, ValueError, ZeroDivisionError, TypeError):
            value = math.nan
        met = not math.isnan(value) and (value >= bound if op == ">=" else value <= bound)
        rows.append({"target": name, "measured": round(value, 3), "goal": f"{op} {bound:,} {unit}".strip(),
                     "unit": unit, "met": met})
    return rows


def write_report(results: dict, latencies: dict[str, list[float]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = evaluate(results) if "reads_closed" in results else []
    plots = []
    if latencies:
        plots.append(_plot_latency(latencies, out / "latency.png"))
        (out / "latencies.json").write_text(json.dumps(latencies))
    elif (out / "latency.png").exists():
        plots.append(out / "latency.png")  # re-rendered without the raw latencies: keep the plot drawn then
    if "reads_closed" in results:
        plots.append(_plot_throughput(results["reads_closed"], out / "throughput.png"))
    if results.get("fanout"):
        plots.append(_plot_fanout(results["fanout"], out / "fanout.png"))
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


def _plot_fanout(rows: list[dict], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["followers"] for r in rows], [1000 * r["seconds"] for r in rows], label="one tweet's fan-out")
    ax.set_xscale("log")
    ax.set_xlabel("author's followers (log scale)")
    ax.set_ylabel("post to fully delivered (ms)")
    ax.axhline(1000, color="red", linewidth=0.8, linestyle="--", label="1 s target")
    ax.set_title("Fan-out completion time against follower count")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _row(label: str, s: dict) -> str:
    return (f"| {label} | {s['rps']:,.0f} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['errors']} | "
            f"{100 * s['cpu_share']:.0f}% |")


def _markdown(r: dict, plots: list[str]) -> str:
    meta, lines = r["meta"], []
    ds = meta.get("dataset", {})
    lines += [
        f"# Benchmark report — {meta['started']} ({meta['profile']} profile)",
        "",
        f"Machine: {meta['cpus']} cores, Python {meta['python']}, {meta['machine']}. The load generator runs on the "
        "same machine; its CPU use (share of one core) is in every table. Run took "
        f"{meta.get('seconds', 0):.0f} s.",
        "",
        f"Data set: {ds.get('users', 0):,} users, {ds.get('follows', 0):,} follows, {ds.get('tweets', 0):,} tweets "
        f"over 30 days, {ds.get('active_users', 0):,} active users with a cached timeline, celebrity threshold "
        f"{ds.get('threshold', 0):,} (celebrities: {len(ds.get('celebrities', []))}); seeded in "
        f"{ds.get('seconds', 0)} s.",
        "",
        "Stack (as `make run` starts it):",
        "",
        *[f"- {name}: `{cmd}`" for name, cmd in meta.get("stack", {}).items()],
        "",
    ]
    if r.get("targets"):
        lines += ["## Targets", "", "| target | goal | measured | met |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | {t['goal']} | {t['measured']:,} {t['unit']} | {'yes' if t['met'] else 'NO'} |"
                  for t in r["targets"]]
        lines.append("")
    header = ["| run | req/s | p50 ms | p95 ms | p99 ms | errors | generator CPU |", "|---|---|---|---|---|---|---|"]
    if "reads_closed" in r:
        lines += ["## Reads, closed loop (`limit=20`, random active users)", "", *header]
        for name, rows in r["reads_closed"].items():
            lines += [_row(f"{name}, {row['concurrency']} connections", row) for row in rows]
        lines += ["", "`timeline` is `GET /v1/timeline/home`; `ping` an authenticated DRF no-op on the same server "
                  "(the framework's ceiling); `naive` the fan-out-on-read SQL timeline on the same data.", ""]
    extra = [("reads_open", "timeline, open loop at half the max"),
             ("deep_pages", "deep pages (cursor past the cache)"),
             ("celebrity_readers", "readers following ≥ 2 celebrities"),
             ("posts_closed", "POST /v1/tweets, closed"),
             ("posts_open", "POST /v1/tweets, open loop at half the max")]
    if any(k in r for k, _ in extra):
        lines += ["## Other runs", "", *header]
        lines += [_row(label, r[k]) for k, label in extra if k in r]
        lines.append("")
    if r.get("fanout"):
        lines += ["## Fan-out", "",
                  "| followers | cached timelines written | post → fully delivered (ms) | deliveries/s |",
                  "|---|---|---|---|"]
        lines += [f"| {x['followers']:,} | {x['cached_timelines']:,} | {1000 * x['seconds']:.0f} | "
                  f"{x['deliveries_per_s']:,} |" for x in r["fanout"]]
        c = r["lpush_ceiling"]
        lines += ["", f"Raw ceiling of the same Redis server: {c['ops_per_s']:,.0f} LPUSH/s (`{c['tool']}`).", ""]
    if "propagation" in r:
        p = r["propagation"]
        lines += ["## Propagation during a 100:1 read/write mix", "", *header,
                  _row("reads", p["reads"]), _row("posts", p["writes"]), "",
                  f"Post to visible in sampled followers' cached timelines: p50 {p['p50_ms']:.0f} ms, "
                  f"p99 {p['p99_ms']:.0f} ms over {p['samples']} tweets.", ""]
    if "memory" in r:
        m = r["memory"]
        lines += ["## Redis memory", "",
                  f"- {m['bytes_per_entry']} bytes per cached timeline entry (`MEMORY USAGE` over "
                  f"{m['timelines_sampled']:,} timelines of {m['mean_entries']} entries on average)",
                  f"- {m['bytes_per_active_user']:,} bytes of timeline keys per active user; "
                  f"{m['used_memory_per_active_user']:,} bytes of all Redis memory per active user", ""]
    if "profile" in r:
        lines += ["## Profile of the web server under timeline reads (py-spy)", "",
                  "The project's own functions (inclusive share of the samples), then the hottest leaves.", "",
                  "| share of samples | frame |", "|---|---|"]
        lines += [f"| {100 * f['share']:.0f}% | `{f['frame']}` |" for f in r["profile"]["top"]]
        lines += ["", f"Full collapsed stacks: `{r['profile']['file']}`.", ""]
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
