"""Where the bench's Valkey memory goes, by key family.

``SCAN`` walks every key of the app's database (and the broker's); each key is
counted in its family by the name's first segment (``tl:{42}`` is a timeline),
and up to :data:`SAMPLE` keys a family are weighed with ``MEMORY USAGE`` (every
element counted). A family's bytes are its key count times the mean of its
sample: an estimate, exact for families of at most ``SAMPLE`` keys. What the
families do not explain (the server's own overhead, fragmentation, scripts,
clients' buffers) is the rest of ``used_memory``.
"""
from __future__ import annotations

import random
from collections import defaultdict

SAMPLE = 300
# First segment of a key's name -> its family, in the report's order.
FAMILIES = {
    "tl": "tl: timelines",
    "tw": "tw: tweet cache",
    "u": "u: author cache",
    "u2": "u: author cache",
    "fgp": "fgp: follow graphs",
    "tlg": "tlg: generations",
    "rl": "rl: rate limits",
    "fo": "fo: fan-out bookkeeping",
    "fot": "fot: fan-out timings (the bench's)",
    "once": "once: claims",
    "ut": "ut: pulled lists",
    "cache": "cache: Django cache",
    "pullers": "pullers, pull-epoch: celebrity pull",
    "pull-epoch": "pullers, pull-epoch: celebrity pull",
}
OTHERS = "others"


def family(key: bytes | str, prefix: str = "") -> str:
    """The family of a key (its name's first segment after the project's ``REDIS_KEY_PREFIX``)."""
    name = key.decode(errors="replace") if isinstance(key, bytes) else key
    if prefix and name.startswith(prefix):
        name = name[len(prefix):]
    head = name.split(":", 1)[0] if ":" in name else ""
    return FAMILIES.get(head, OTHERS)


def estimate(counts: dict[str, int], samples: dict[str, list[int]], active_users: int) -> list[dict]:
    """Each family's keys, bytes (its count times its sample's mean) and bytes per active user, biggest first."""
    rows = []
    for name, keys in counts.items():
        sizes = samples.get(name) or [0]
        total = round(keys * sum(sizes) / len(sizes))
        rows.append({"family": name, "keys": keys, "sampled": len(samples.get(name) or []),
                     "bytes_per_key": round(sum(sizes) / len(sizes), 1), "bytes": total,
                     "bytes_per_active_user": round(total / active_users, 1) if active_users else None})
    return sorted(rows, key=lambda r: -r["bytes"])


def by_family(*, host: str, port: int, active_users: int, prefix: str = "", dbs: tuple[int, ...] = (0, 1)) -> dict:
    """SCAN the app's (0) and the broker's (1) databases; the families' estimated bytes beside ``used_memory``."""
    import redis

    counts: dict[str, int] = defaultdict(int)
    reservoirs: dict[str, list[bytes]] = defaultdict(list)
    samples: dict[str, list[int]] = {}
    rng = random.Random(11)
    used = 0
    for db in dbs:
        client = redis.Redis(host=host, port=port, db=db)
        used = client.info("memory")["used_memory"]
        for key in client.scan_iter(count=2000):
            name = family(key, prefix) if db == 0 else "broker (db 1)"
            counts[name] += 1
            reservoir = reservoirs[f"{db}|{name}"]
            if len(reservoir) < SAMPLE:
                reservoir.append(key)
            elif (j := rng.randrange(counts[name])) < SAMPLE:
                reservoir[j] = key
        for label, keys in list(reservoirs.items()):
            if not label.startswith(f"{db}|"):
                continue
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.memory_usage(key, samples=0)
            samples[label.split("|", 1)[1]] = [x or 0 for x in pipe.execute()]
    rows = estimate(dict(counts), samples, active_users)
    explained = sum(r["bytes"] for r in rows)
    return {"used_memory": used, "families": rows, "unexplained_bytes": used - explained,
            "unexplained_per_active_user": round((used - explained) / active_users, 1) if active_users else None}
