"""Helpers shared by several test files (fixtures that need no arguments live in conftest.py)."""
from celery import current_app


def hold_timeline_tasks(monkeypatch, queue: list) -> list:
    """Stand in for the broker: every timeline task sent is appended to ``queue`` as
    ``(task, args)`` instead, to be run (``task.run(*args)``) when, as often and in
    whatever order the test likes."""
    from timelines import services

    monkeypatch.setattr(services, "_send", lambda name, *args: queue.append((current_app.tasks[name], args)))
    return queue
