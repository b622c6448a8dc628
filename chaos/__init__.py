"""The fault-injection suite: a stack of its own (PostgreSQL, Redis, a broker, the
Procfile's web, stream, worker and beat), real faults (SIGKILL, SIGSTOP/SIGCONT,
stop and start) under load, and after each an audit of every affected timeline
against PostgreSQL, and of what every connected stream reader received against
its timeline. ``make chaos`` (``python -m chaos``) runs the full form and writes
the table to docs/reliability.md; tests/chaos runs a bounded form. Nothing here
imports the product: it talks HTTP, SQL and the Redis protocol, as clients and
operators do.
"""
