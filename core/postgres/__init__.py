"""Django's PostgreSQL backend, with every wait on the server bounded and a circuit breaker
per server (``ENGINE = "core.postgres"``; the backend is ``base.DatabaseWrapper``)."""
