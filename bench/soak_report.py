"""Turn a soak's results (``bench/soak.py``) into report.json, report.md and soak.png.

    .venv/bin/python -m bench.soak_report bench/results/soak-<date>   # re-render from report.json
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MB = 2**20


def memory_trend(samples: list[dict], group: str, key: str = "rss", skip: float = 0.1) -> dict:
    """How a group's memory moved once warm: its value at the start and end of the run (the median of the first and
    last tenth of the samples after the first ``skip`` share), and the least-squares slope over that span."""
    rows = [(s["t"], s["groups"][group][key]) for s in samples if s["groups"][group]["processes"]]
    rows = rows[int(len(rows) * skip):]
    if len(rows) < 4:
        return {}
    tenth = max(1, len(rows) // 10)

    def median(values: list[int]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    start, end = median([v for _, v in rows[:tenth]]), median([v for _, v in rows[-tenth:]])
    ts, vs = [t for t, _ in rows], [v for _, v in rows]
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    var = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (v - mv) for t, v in rows) / var if var else 0.0
    return {"start_mb": round(start / 2**20, 1), "end_mb": round(end / 2**20, 1),
            "change_pct": round(100 * (end - start) / start, 1) if start else None,
            "slope_mb_per_hour": round(slope * 3600 / 2**20, 1),
            "min_mb": round(min(vs) / 2**20, 1), "max_mb": round(max(vs) / 2**20, 1)}


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    samples = results.get("memory", {}).get("samples", [])
    if samples:
        results["memory"]["trend"] = {g: {key: memory_trend(samples, g, key) for key in ("rss", "pss")}
                                      for g in samples[0]["groups"]}
        _plot(results, out / "soak.png")
    (out / "report.json").write_text(json.dumps(results, indent=1, default=str))
    (out / "report.md").write_text(_markdown(results))


def _group_total(samples: list[dict], prefix: str, key: str = "rss") -> list[float]:
    return [sum(v[key] for g, v in s["groups"].items() if g.startswith(prefix)) / MB for s in samples]


def _plot(r: dict, path: Path) -> None:
    samples = r["memory"]["samples"]
    # The last bucket of the load holds only the requests due at its very end: a partial one.
    series = [row for row in r.get("series", []) if row["t"] <= 60 * r["meta"]["minutes"] + 1e-6]
    fig, (mem, growth, rate, lat) = plt.subplots(4, 1, figsize=(10, 12.5), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 2, 2, 2]})
    ts = [s["t"] / 60 for s in samples]
    for group in samples[0]["groups"]:
        mem.plot(ts, [s["groups"][group]["rss"] / MB for s in samples], linewidth=0.9, label=f"{group} RSS")
    mem.plot(ts, _group_total(samples, "web"), linewidth=2, color="black", label="all web RSS")
    mem.plot(ts, _group_total(samples, "worker"), linewidth=2, color="grey", label="all workers RSS")
    if all("redis_used_memory" in s for s in samples):
        mem.plot(ts, [s["redis_used_memory"] / MB for s in samples], linestyle="--", label="Valkey used_memory")
    mem.set_ylabel("MB")
    mem.set_ylim(bottom=0)
    mem.set_title("Resident memory of each process group (gunicorn master + workers; Celery master + pool)")
    mem.legend(fontsize=7, ncol=3, loc="lower right")
    for group in samples[0]["groups"]:
        first = samples[0]["groups"][group]["rss"]
        growth.plot(ts, [(s["groups"][group]["rss"] - first) / MB for s in samples], linewidth=1, label=group)
    growth.axhline(0, color="grey", linewidth=0.6)
    growth.set_ylabel("MB since the start")
    growth.set_title("The same RSS, as growth since the first sample")
    growth.legend(fontsize=7, ncol=5, loc="upper left")
    if series:
        tt = [row["t"] / 60 for row in series]
        rate.plot(tt, [row["read_rps"] for row in series], label="timeline reads/s")
        rate.plot(tt, [100 * row["write_rps"] for row in series], label="writes/s × 100 (posts, follows, deletes)")
        rate.set_ylabel("answers/s")
        rate.set_ylim(bottom=0)
        rate.set_title(f"Request rate ({r['meta'].get('bucket_seconds', 10):g} s buckets)")
        rate.legend(fontsize=8)
        lat.plot(tt, [row["read_p99"] for row in series], label="timeline read p99")
        lat.plot(tt, [row["read_p50"] for row in series], label="timeline read p50")
        lat.set_yscale("log")
        lat.set_ylabel("ms (log)")
        lat.set_title("Timeline read latency through haproxy (open loop; machine shared with other jobs)")
        lat.legend(fontsize=8)
    lat.set_xlabel("minutes into the soak")
    for ax in (mem, growth, rate, lat):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(r: dict) -> str:
    meta, lines = r["meta"], []
    lines += [f"# Soak report — {meta['started']}", "",
              f"{'PASSED' if r.get('passed') else 'FAILED'}: {r.get('checks')}", "",
              f"Machine: {meta['cpus']} cores, load average {meta['load']:.1f} at the start and "
              f"{meta.get('load_end', 0):.1f} at the end. {meta['minutes']:g} minutes of load at "
              f"{meta['read_rate']:g} reads/s; the whole run took {meta.get('seconds', 0):.0f} s.", "",
              f"Seed: {json.dumps(meta.get('seed', {}))}", "", "Stack:", ""]
    lines += [f"- {name}: `{cmd}`" for name, cmd in meta.get("stack", {}).items()]
    lines += ["", "## Load", "", "| job | answers | req/s | p50 ms | p99 ms | max ms | statuses |",
              "|---|---|---|---|---|---|---|"]
    for name, s in r.get("load", {}).items():
        lines.append(f"| {name} | {s['completed']:,} | {s['rps']:.1f} | {s['p50']} | {s['p99']} | {s['max']} | "
                     f"{s['statuses']} |")
    a = r.get("audit")
    if a:
        lines += ["", "## Audit", "",
                  f"{a['users_equal']} of {a['users']} home timelines equal to PostgreSQL's truth, scrolled to the "
                  f"end over HTTP ({a['tweets_seen']:,} tweets in {a['pages']:,} pages; {a['past_cache']} timelines "
                  f"longer than the cache; {a['cached_timelines']} timelines cached at the end). Lost "
                  f"{a['lost']}, extra {a['extra']}, duplicated {a['duplicates']}, out of order "
                  f"{a['out_of_order']}. Statuses: {a['statuses']}. Drained in {r.get('drain_seconds')} s.", ""]
        if a["problems"]:
            lines += ["Differences (first 50):", "", "```", *[json.dumps(p) for p in a["problems"]], "```", ""]
    lines += _streams_markdown(r.get("streams"), r.get("spread", {}).get("streams_haproxy"))
    trend = r.get("memory", {}).get("trend")
    if trend:
        lines += ["## Memory", "",
                  "| group | RSS start MB | RSS end MB | change | slope MB/h | PSS start MB | PSS end MB |",
                  "|---|---|---|---|---|---|---|"]
        for g, t in trend.items():
            rss, pss = t["rss"], t["pss"]
            if rss:
                lines.append(f"| {g} | {rss['start_mb']} | {rss['end_mb']} | {rss['change_pct']}% | "
                             f"{rss['slope_mb_per_hour']} | {pss.get('start_mb')} | {pss.get('end_mb')} |")
        lines.append("")
    sp = r.get("spread")
    if sp:
        lines += ["## Spread over the two hosts", "", "| server | haproxy requests | 2xx | 4xx | 5xx | "
                  "request lines in its log |", "|---|---|---|---|---|---|"]
        for name, h in sp["haproxy"].items():
            lines.append(f"| {name} | {h['req_tot']:,} | {h['hrsp_2xx']:,} | {h['hrsp_4xx']:,} | {h['hrsp_5xx']} | "
                         f"{sp['web_logs'][name]['requests']:,} |")
        lines += ["", "| worker | tasks run | by task |", "|---|---|---|"]
        for name, w in sp["worker_logs"].items():
            lines.append(f"| {name} | {w['tasks']:,} | {w['by_task']} |")
        lines.append("")
    if r.get("died"):
        lines += [f"Processes that died: {r['died']}", ""]
    lines += ["![soak](soak.png)", ""]
    return "\n".join(lines)


def _streams_markdown(st: dict | None, haproxy: dict | None) -> list[str]:
    """The stream readers: how many, the kill of one stream process and where its readers went, the audit."""
    if not st:
        return []
    lines = ["## Streams", "",
             f"{st['readers']} readers held `/v1/timeline/home/stream` open through haproxy for the whole run, "
             f"reconnecting with `Last-Event-ID` after any disconnection; {st['ws_readers']} of them also held "
             f"Mastodon's WebSocket (`/api/v1/streaming?stream=user`), which reconnects without resuming. At the "
             f"start: {st.get('servers_at_start')}.", ""]
    kill = st.get("kill")
    if kill:
        lines += [f"**{kill['process']} SIGKILLed** {kill['at_seconds']} s into the load, holding "
                  f"{kill['streams_on_it']} streams: {kill['reconnected']} reconnected within "
                  f"{kill['slowest_reconnect_seconds']} s, to {kill['reconnected_to']}; it was started again "
                  f"{kill['down_seconds']:g} s later.", ""]
    if "summary" in st:
        lines += [f"Audit: {st['summary']}.", "",
                  f"Reconnection attempts, by answer: {st['openings']}; {st['reconnects']} reconnections; "
                  f"{st['events']:,} tweet events; {st['readers_equal']} of {st['readers']} `/v1` readers equal to "
                  f"their timeline's head ({st['expected']:,} tweets).", ""]
        if st["problems"]:
            lines += ["Problems:", "", "```", *st["problems"], "```", ""]
        if st["not_replayed"]:
            lines += ["Not replayed (older than the `Last-Event-ID` a reconnection sent; resuming replays only "
                      "newer tweets, as `since` does):", "", "```", *[json.dumps(m) for m in st["not_replayed"]],
                      "```", ""]
        if st["deleted_unheard"]:
            lines += [f"Deleted while the reader was away (a resume does not replay deletions): "
                      f"{st['deleted_unheard']}", ""]
    if haproxy:
        lines += ["| stream process | streams (haproxy sessions) | 2xx | 5xx | refused | redispatched | "
                  "failed checks |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {name} | {h['stot']:,} | {h['hrsp_2xx']:,} | {h['hrsp_5xx']} | {h['econ']} | {h['wredis']} | "
                  f"{h['chkdown']} |" for name, h in haproxy.items()]
        lines.append("")
    return lines


if __name__ == "__main__":
    directory = Path(sys.argv[1])
    write_report(json.loads((directory / "report.json").read_text()), directory)
