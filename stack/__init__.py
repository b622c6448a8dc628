"""The stack runner behind ``make run`` and ``make test`` (``python -m stack run|test``), and the
backups (``python -m stack backup|archive-wal|restore``).

- ``cli``: the command line; resolve the services, prepare the database, then
  run the stack or the test suite.
- ``services``: where PostgreSQL, Redis and the broker are (``postgres`` and
  ``valkey`` start embedded servers where none is configured); the database.
- ``procfile``: the processes, read from the repository's ``Procfile``.
- ``supervisor``: runs them in the foreground, restarting a worker or beat that dies.
- ``backup``: base backups, the WAL archive and the restore, with PostgreSQL's own tools.
- ``common``: messages, signals, child processes and ports.

It imports none of the project's apps: it runs before Django is configured.
"""
