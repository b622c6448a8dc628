"""What a Snowflake lease costs: acquiring and renewing a worker id in PostgreSQL, and minting between renewals.

    DJANGO_SETTINGS_MODULE=config.settings.local .venv/bin/python -m bench.lease_timings

Against the database ``DATABASE_URL`` names (migrated). The worker ids it takes
are handed back (expired) at the end; a process holding one meanwhile is not
disturbed, as acquiring takes only free ones.
"""
import os
import statistics
import time


def _summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"{name}: median {statistics.median(ms):.3f} ms, p99 {ms[int(len(ms) * 0.99)]:.3f} ms ({len(ms)} runs)"


def main(runs: int = 300, mints: int = 200_000) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    django.setup()
    from tweets import snowflake

    leases = snowflake.PostgresLeases()
    holder = f"bench-{os.getpid()}"
    acquired, renewed, taken = [], [], []
    try:
        for _ in range(runs):
            started = time.perf_counter()
            got = leases.acquire(holder=holder, mark=snowflake._now_ms(), slack_ms=snowflake.RENEW_EVERY_MS)
            acquired.append(time.perf_counter() - started)
            if got is None:
                break
            taken.append(got[0])
            started = time.perf_counter()
            leases.renew(worker_id=got[0], holder=holder, mark=snowflake._now_ms())
            renewed.append(time.perf_counter() - started)
    finally:
        leases._run(f"UPDATE {snowflake._TABLE} SET expires_at = '-infinity' WHERE holder = %(holder)s",
                    {"holder": holder})
        leases.close()
    print(_summary("acquire", acquired))
    print(_summary("renew", renewed))
    generator = snowflake.SnowflakeGenerator()
    generator.next_id()  # leased
    started = time.perf_counter()
    for _ in range(mints):
        generator.next_id()
    print(f"next_id between renewals: {(time.perf_counter() - started) / mints * 1e6:.2f} µs an id ({mints} ids)")
    generator.close()


if __name__ == "__main__":
    main()
