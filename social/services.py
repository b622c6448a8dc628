"""Every write to users and the follow graph.

Follow counts change only here, with ``F()`` updates in the same transaction as
the follow row they count. Every follow write locks both users' rows first (in
id order), so writes on one pair queue up and a repeated or concurrent follow
finds the edge already there and counts once. Every change to an accepted edge is
announced with ``signals.follow_changed`` (the timeline app updates the
follower's cached timeline from it); this app knows nothing of timelines.

Suspending and reinstating a user (``user_suspend``, ``user_reinstate``) change
only ``is_active`` (and a suspension ``token_version``: ``sessions_end``);
everything that hides a suspended user reads that flag, in PostgreSQL or in the
author cache, which is refreshed after commit.
"""
import logging
from collections.abc import Set

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from core.exceptions import ApplicationError, Forbidden, NotFound

from . import cache, tokens
from .models import AccountChange, Follow, User, accepted_sql
from .signals import authors_changed, follow_changed, sessions_ended

logger = logging.getLogger(__name__)


@transaction.atomic
def user_register(*, username: str, password: str, display_name: str = "") -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": ["This username is already taken."]})
    user = User(username=username, display_name=display_name)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password": error.messages}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # a concurrent registration of the same name won the race
        raise ValidationError({"username": ["This username is already taken."]}) from None
    return user


def user_update(*, user: User, display_name: str | None = None, is_private: bool | None = None) -> User:
    """Change a user's profile. Going public then approves the pending follow requests,
    in bounded batches of their own (``follow_requests_accept_pending``)."""
    with transaction.atomic():
        # The account's own row alone: requesters are locked later, with it, in id order.
        user = User.objects.select_for_update(no_key=True).get(id=user.id)
        fields = []
        if display_name is not None:
            user.display_name = display_name
            fields.append("display_name")
        went_public = is_private is False and user.is_private
        if is_private is not None and is_private != user.is_private:
            user.is_private = is_private
            fields.append("is_private")
        if fields:
            user.save(update_fields=fields)
            author_cache_refresh_after_commit(user)
    if went_public:
        follow_requests_accept_pending(followee_id=user.id)
    user.refresh_from_db(fields=["followers_count", "following_count"])
    return user


def author_cache_refresh_after_commit(user: User) -> None:
    """Rewrite ``user``'s author-cache entry once the change commits, from the row as
    committed then (with the version the cache orders entries by). If Redis fails then,
    the answer still stands (it is committed): the error is logged, and the trigger's
    ``AccountChange`` row is replayed within seconds (``account_changes_replay``)."""
    user_id = user.id
    transaction.on_commit(
        lambda: authors_cache_refresh(users=list(User.objects.filter(id=user_id).only(*cache.FIELDS))),
        robust=True)


class _CountsRefresh:
    """The users whose follow counts a transaction changed: their author-cache entries
    are rewritten once it commits, in one query and one round trip however many
    follows it changed (``_counts_refresh_after_commit``)."""

    def __init__(self, user_ids: Set[int]):
        self.user_ids = set(user_ids)

    def __call__(self) -> None:
        cache.refresh_from_db(user_ids=self.user_ids)


def _counts_refresh_after_commit(user_ids: Set[int]) -> None:
    """Accounts shown from the author cache (the Mastodon API's) carry the follow counts:
    have ``user_ids``' entries rewritten after commit, joining the transaction's pending
    rewrite if it has one. Django drops a callback whose savepoint rolls back, and the
    ids added to it since were all added inside that savepoint, so none is lost."""
    if not user_ids:
        return
    pending = next((func for _, func, _ in transaction.get_connection().run_on_commit
                    if isinstance(func, _CountsRefresh)), None)
    if pending is not None:
        pending.user_ids.update(user_ids)
    else:
        transaction.on_commit(_CountsRefresh(user_ids), robust=True)


@transaction.atomic
def user_suspend(*, user_id: int, actor: User | None = None) -> bool:
    """Suspend a user; idempotent. Returns whether this call changed the account.

    A suspended user cannot log in, refresh a token or use one (every
    authentication checks ``is_active``: PostgreSQL's row or the author cache),
    nor be followed or looked up, and their tweets are hidden from every timeline
    and tweet lookup at read time. Every session they hold ends in the same
    transaction (``sessions_end``, also from ``User.save``: the ``/v1``
    refresh tokens and the OAuth tokens are revoked, the token version bumped; a
    refresh in flight finishes first, under its lock on the user), so
    reinstating them does not bring old sessions back. Nothing else is deleted: cached timelines
    keep the ids, so ``user_reinstate`` brings the tweets back. ``actor`` is the
    moderator acting (with ``social.change_user``; only a superuser may act on a
    staff or superuser account), or ``None`` for an operator at the command line.
    """
    changed = _user_set_active(user_id=user_id, active=False, actor=actor)
    if not changed:  # already inactive: perhaps behind User.save's back (plain SQL), which ended nothing
        sessions_end(user_id=user_id)
    return changed


def sessions_end(*, user_id: int) -> None:
    """End every session of the user, in the caller's transaction: the ``/v1`` refresh tokens
    are revoked, and every other issuer revokes its own (``signals.sessions_ended``: the OAuth
    tokens); the author cache, which holds the token version, is rewritten after commit.
    ``User.save`` has it called for a new password or a suspension (``receivers``)."""
    tokens.refresh_tokens_revoke_all(user_id=user_id)
    sessions_ended.send(sender=User, user_id=user_id)
    author_cache_refresh_after_commit(User(id=user_id))


def user_reinstate(*, user_id: int, actor: User | None = None) -> bool:
    """Undo ``user_suspend``; idempotent. Returns whether this call changed the account."""
    return _user_set_active(user_id=user_id, active=True, actor=actor)


@transaction.atomic
def _user_set_active(*, user_id: int, active: bool, actor: User | None) -> bool:
    if actor is not None and not actor.has_perm("social.change_user"):
        raise Forbidden("Only a moderator may suspend or reinstate a user.")
    # The row lock queues this behind any follow or post holding the user, and
    # only ``is_active`` is written, so nothing they commit is overwritten.
    user = User.objects.select_for_update(no_key=True).filter(id=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    if actor is not None and not actor.is_superuser and (user.is_staff or user.is_superuser):
        raise Forbidden("Only a superuser may suspend or reinstate a staff or superuser account.")
    changed = user.is_active != active
    if changed:
        user.is_active = active
        user.save(update_fields=["is_active"])
        _counts_refresh_after_commit(_neighbour_counts_change(user_id=user.id, delta=1 if active else -1))
        logger.info("user %s (%s) %s by %s", user.id, user.username, "reinstated" if active else "suspended",
                    actor.username if actor is not None else "an operator")
    # Also when nothing changed: a repeat heals a cache whose refresh failed after the first commit.
    author_cache_refresh_after_commit(user)
    return changed


def _lock_users(*user_ids: int) -> dict[int, User]:
    """Lock the users' rows, in id order like every count update, before touching their follows.

    Every follow write locks both users first, so two writes on the same pair
    (or on A->B and B->A) queue up instead of deadlocking.
    """
    return {u.id: u for u in User.objects.select_for_update(no_key=True)
            .filter(id__in=user_ids).order_by("id")}


def _counts_change(*, users: dict[int, User], follower_id: int, followee_id: int, delta: int) -> None:
    """Count an accepted edge appearing (+1) or going (-1), on both users (``users``: both, locked).

    A user's counts are of the edges whose other end is active: a suspended user
    is counted by no one (``_neighbour_counts_change`` takes their edges out of
    the others' counts, and puts them back on reinstatement). So each end's
    count moves only if the other end is active.
    """
    for user_id in sorted((follower_id, followee_id)):
        other = followee_id if user_id == follower_id else follower_id
        if users[other].is_active:
            field = "following_count" if user_id == follower_id else "followers_count"
            User.objects.filter(id=user_id).update(**{field: F(field) + delta})
    _counts_refresh_after_commit({follower_id, followee_id})


def _neighbour_counts_change(*, user_id: int, delta: int) -> set[int]:
    """Take a user's accepted edges out of (-1) or back into (+1) the counts of the users
    at their other end: suspended users vanish from the counts others see. Returns the
    ids of those users (their counts changed)."""
    users, follows = User._meta.db_table, Follow._meta.db_table
    neighbours: set[int] = set()
    with connection.cursor() as cursor:
        for counted, this_end, other_end in (("followers_count", "follower_id", "followee_id"),
                                             ("following_count", "followee_id", "follower_id")):
            # The neighbours' rows locked in id order, like every other count update.
            cursor.execute(
                f"SELECT id FROM {users} WHERE id IN (SELECT {other_end} FROM {follows} "
                f"WHERE {this_end} = %s AND {accepted_sql()}) ORDER BY id FOR NO KEY UPDATE",
                [user_id])
            neighbours.update(row[0] for row in cursor.fetchall())
            cursor.execute(
                f"UPDATE {users} u SET {counted} = u.{counted} + %s FROM {follows} f "
                f"WHERE f.{this_end} = %s AND {accepted_sql('f')} AND u.id = f.{other_end}",
                [delta, user_id])
    return neighbours


def _following_full(*, follower_id: int) -> bool:
    """Whether the user already follows (or asked to follow) ``MAX_FOLLOWING`` accounts."""
    return Follow.objects.filter(follower_id=follower_id)[: settings.MAX_FOLLOWING].count() >= settings.MAX_FOLLOWING


@transaction.atomic
def follow_create(*, follower: User, followee_id: int) -> Follow.State:
    """Follow (or ask to follow a private account); idempotent. Returns the follow's state.

    Locks both users (in id order), inserts the edge and counts it. A user
    follows or asks to follow at most ``MAX_FOLLOWING`` accounts (403 beyond).
    An accepted edge sends ``follow_changed(followed=True)``:
    ``timelines.receivers.follow_changed_update_timeline`` then backfills the
    followee's tweets into the follower's cached timeline after commit
    (``timelines.services.timeline_follow_update``).
    """
    if followee_id == follower.id:
        raise ApplicationError("You cannot follow yourself.")
    users = _lock_users(follower.id, followee_id)
    followee = users.get(followee_id)
    if followee is None or not followee.is_active:
        raise NotFound("No such user.")
    existing = Follow.objects.filter(follower=follower, followee=followee).values_list("state", flat=True).first()
    if existing is None:
        if _following_full(follower_id=follower.id):
            raise Forbidden(f"You already follow or asked to follow {settings.MAX_FOLLOWING} accounts, the most "
                            "one may; unfollow some first.")
        state = Follow.State.REQUESTED if followee.is_private else Follow.State.ACCEPTED
        Follow.objects.create(follower=follower, followee=followee, state=state)
        if state == Follow.State.ACCEPTED:
            _counts_change(users=users, follower_id=follower.id, followee_id=followee.id, delta=1)
    elif existing == Follow.State.REQUESTED and not followee.is_private:
        # Asked while the account was private; it has gone public since (its
        # pending requests are being approved in batches): accept this one now.
        _request_accept(users=users, follower_id=follower.id, followee_id=followee.id)
        return Follow.State.ACCEPTED
    else:
        state = Follow.State(existing)
    if state == Follow.State.ACCEPTED:
        # Also on a repeated follow: a retry then heals a timeline whose first
        # invalidation failed after the commit.
        _announce_follow_change(follower_id=follower.id, followee_id=followee.id, followed=True)
    return state


@transaction.atomic
def follow_delete(*, follower: User, followee_id: int) -> None:
    """Unfollow, or withdraw a pending request; idempotent.

    An accepted edge removed sends ``follow_changed(followed=False)``: the
    timeline app drops the former followee's tweets from the cached timeline
    after commit (and the read path filters them out meanwhile).
    """
    _edge_delete(follower_id=follower.id, followee_id=followee_id, states=(Follow.State.ACCEPTED,
                                                                            Follow.State.REQUESTED))


@transaction.atomic
def follower_remove(*, followee: User, follower_id: int) -> None:
    """Remove an accepted follower (idempotent): from their next read on they see nothing
    private of ``followee``, on any path, and must ask again. Pending requests are rejected
    with ``follow_request_reject`` instead."""
    _edge_delete(follower_id=follower_id, followee_id=followee.id, states=(Follow.State.ACCEPTED,))


def _edge_delete(*, follower_id: int, followee_id: int, states: tuple[str, ...]) -> None:
    users = _lock_users(follower_id, followee_id)
    deleted = Follow.objects.filter(follower_id=follower_id, followee_id=followee_id, state__in=states)
    state = deleted.values_list("state", flat=True).first()
    if state is None:
        return
    deleted.delete()
    if state == Follow.State.ACCEPTED:
        _counts_change(users=users, follower_id=follower_id, followee_id=followee_id, delta=-1)
        _announce_follow_change(follower_id=follower_id, followee_id=followee_id, followed=False)


@transaction.atomic
def follow_request_approve(*, followee: User, follower_id: int) -> None:
    """Accept a pending request: counted, and announced like a follow (``follow_changed``)."""
    users = _lock_users(follower_id, followee.id)
    if not _request_accept(users=users, follower_id=follower_id, followee_id=followee.id):
        raise NotFound("No pending follow request from that user.")


def _request_accept(*, users: dict[int, User], follower_id: int, followee_id: int) -> bool:
    """Turn a pending request into an accepted follow (both users locked); False if none is pending."""
    updated = Follow.objects.requested().filter(
        follower_id=follower_id, followee_id=followee_id
    ).update(state=Follow.State.ACCEPTED)
    if updated:
        _counts_change(users=users, follower_id=follower_id, followee_id=followee_id, delta=1)
        _announce_follow_change(follower_id=follower_id, followee_id=followee_id, followed=True)
    return bool(updated)


@transaction.atomic
def follow_request_reject(*, followee: User, follower_id: int) -> None:
    _lock_users(follower_id, followee.id)
    deleted, _ = Follow.objects.requested().filter(follower_id=follower_id, followee=followee).delete()
    if not deleted:
        raise NotFound("No pending follow request from that user.")


def follow_requests_accept_pending(*, followee_id: int, batch_size: int = 100) -> int:
    """Approve every pending request of an account that is public, ``batch_size`` at a time,
    each batch its own transaction locking the account and its requesters in id order.
    Stops if the account turns private again. Returns how many it approved.

    Called after an account goes public (``user_update``), and by the replay of
    account changes (``account_changes_replay``) should that call not finish.
    """
    approved = 0
    while True:
        with transaction.atomic():
            batch = list(Follow.objects.requested().filter(followee_id=followee_id)
                         .order_by("follower_id").values_list("follower_id", flat=True)[:batch_size])
            if not batch:
                return approved
            users = _lock_users(followee_id, *batch)
            followee = users.get(followee_id)
            if followee is None or followee.is_private:
                return approved
            approved += sum(_request_accept(users=users, follower_id=follower_id, followee_id=followee_id)
                            for follower_id in batch)


def account_changes_replay(*, limit: int = 1000) -> int:
    """Apply logged account changes (``AccountChange``) to the author cache: each account's
    summary is rewritten from PostgreSQL as it is now (or dropped, for a deleted one), and
    a public account's leftover follow requests are approved. Returns how many rows it applied.

    The services refresh the cache right after commit already; this makes the change
    take effect within seconds however that refresh was lost, and catches changes made
    outside the services (a command, plain SQL). Rows are deleted only once applied:
    while Redis is unreachable they wait for it.
    """
    changes = list(AccountChange.objects.order_by("id").values_list("id", "user_id")[:limit])
    if not changes:
        return 0
    user_ids = {user_id for _, user_id in changes}
    users = list(User.objects.filter(id__in=user_ids))
    authors_cache_refresh(users=users, deleted=user_ids - {u.id for u in users})
    for user in users:
        if not user.is_private and user.is_active:
            follow_requests_accept_pending(followee_id=user.id)
    AccountChange.objects.filter(id__in=[change_id for change_id, _ in changes]).delete()
    return len(changes)


def authors_cache_refresh(*, users: list[User], deleted: Set[int] = frozenset()) -> None:
    """Rewrite the author-cache entries of ``users`` from these rows, drop those of the
    ``deleted`` ids, and announce it (``authors_changed``: cached tweets carry the summaries)."""
    cache.refresh_many(users)
    cache.evict_many(deleted)
    authors_changed.send(sender=User, user_ids={user.id for user in users} | set(deleted))


def _announce_follow_change(*, follower_id: int, followee_id: int, followed: bool) -> None:
    """The follower's accepted followees changed: tell whoever keeps state derived from them."""
    follow_changed.send(sender=Follow, follower_id=follower_id, followee_id=followee_id, followed=followed)
