"""The stack runner behind ``make run`` and ``make test`` (``python -m stack run|test``).

- ``cli``: the command line; resolve the services, prepare the database, then
  run the stack or the test suite.
- ``services``: where PostgreSQL, Redis and the broker are (``postgres`` and
  ``valkey`` start embedded servers where none is configured); the database.
- ``procfile``: the processes, read from the repository's ``Procfile``.
- ``supervisor``: runs them in the foreground, restarting a worker or beat that dies.
- ``common``: messages, signals, child processes and ports.

It imports none of the project's apps: it runs before Django is configured.
"""
