"""What the follow graph announces; higher apps (``timelines``) connect receivers to it.

``follow_changed`` is sent inside the writing transaction for every accepted
edge that appeared or disappeared: a follow of a public account, an approved
request (one by one, also when an account goes public), an unfollow. A repeated
follow of an account already followed sends it again (so a retry heals what a
failure after the first commit left stale): receivers must be idempotent.
Receivers that touch anything outside PostgreSQL defer that to
``transaction.on_commit``.
Keyword arguments: ``follower_id``, ``followee_id``, ``followed`` (bool).
"""
from django.dispatch import Signal

follow_changed = Signal()
