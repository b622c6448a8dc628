"""What the follow graph announces; higher apps (``timelines``) connect receivers to it.

``follow_changed`` is sent inside the writing transaction for every accepted
edge that appeared or disappeared: a follow of a public account, an approved
request (one by one, also when an account goes public), an unfollow, a follower
removed. A repeated
follow of an account already followed sends it again (so a retry heals what a
failure after the first commit left stale): receivers must be idempotent.
Receivers that touch anything outside PostgreSQL defer that to
``transaction.on_commit``.
Keyword arguments: ``follower_id``, ``followee_id``, ``followed`` (bool).

``authors_changed`` is sent after users' author-cache entries were rewritten or
dropped (``services.authors_cache_refresh``): whoever caches copies of those
summaries drops them. Keyword argument: ``user_ids`` (a set). A receiver's
error propagates, so a change it could not apply is replayed
(``services.account_changes_replay`` keeps its row).

``sessions_ended`` is sent inside the writing transaction when every session of a
user ends (``services.sessions_end``: a new or disabled password, a suspension),
once the ``/v1`` refresh tokens are revoked: every other issuer of tokens revokes
all it issued to the user (``mastoapi.receivers``: the OAuth tokens). Keyword
argument: ``user_id``.
"""
from django.dispatch import Signal

follow_changed = Signal()
authors_changed = Signal()
sessions_ended = Signal()
