"""Every write to users and the follow graph.

Follow counts change only here, with ``F()`` updates in the same transaction as
the follow row they count; inserting with ``ON CONFLICT DO NOTHING`` makes a
repeated or concurrent follow count once. Every change to an accepted edge is
announced with ``signals.follow_changed`` (the timeline app updates the
follower's cached timeline from it); this app knows nothing of timelines.

Suspending and reinstating a user (``user_suspend``, ``user_reinstate``) change
only ``is_active``; everything that hides a suspended user reads that flag, in
PostgreSQL or in the author cache, which is refreshed after commit.
"""
import logging

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from core.exceptions import ApplicationError, Forbidden, NotFound

from . import cache, tokens
from .models import Follow, User
from .signals import follow_changed

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


@transaction.atomic
def user_update(*, user: User, display_name: str | None = None, is_private: bool | None = None) -> User:
    user = User.objects.select_for_update().get(id=user.id)
    fields = []
    if display_name is not None:
        user.display_name = display_name
        fields.append("display_name")
    if is_private is not None and is_private != user.is_private:
        user.is_private = is_private
        fields.append("is_private")
        if not is_private:
            _follow_requests_accept_all(followee=user)
    if fields:
        user.save(update_fields=fields)
        transaction.on_commit(lambda: cache.refresh(user))
    user.refresh_from_db(fields=["followers_count", "following_count"])
    return user


@transaction.atomic
def user_suspend(*, user_id: int, actor: User | None = None) -> bool:
    """Suspend a user; idempotent. Returns whether this call changed the account.

    A suspended user cannot log in, refresh a token or use one (every
    authentication checks ``is_active``: PostgreSQL's row or the author cache),
    nor be followed or looked up, and their tweets are hidden from every timeline
    and tweet lookup at read time. Every refresh token they hold is revoked in
    the same transaction (``tokens.refresh_tokens_revoke_all``; a refresh in
    flight finishes first, under its lock on the user), so reinstating them
    does not bring old sessions back. Nothing else is deleted: cached timelines
    keep the ids, so ``user_reinstate`` brings the tweets back. ``actor`` is the
    staff member acting, or ``None`` for an operator at the command line.
    """
    changed = _user_set_active(user_id=user_id, active=False, actor=actor)
    tokens.refresh_tokens_revoke_all(user_id=user_id)
    return changed


def user_reinstate(*, user_id: int, actor: User | None = None) -> bool:
    """Undo ``user_suspend``; idempotent. Returns whether this call changed the account."""
    return _user_set_active(user_id=user_id, active=True, actor=actor)


@transaction.atomic
def _user_set_active(*, user_id: int, active: bool, actor: User | None) -> bool:
    if actor is not None and not actor.is_staff:
        raise Forbidden("Only a moderator may suspend or reinstate a user.")
    # The row lock queues this behind any follow or post holding the user, and
    # only ``is_active`` is written, so nothing they commit is overwritten.
    user = User.objects.select_for_update(no_key=True).filter(id=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    changed = user.is_active != active
    if changed:
        user.is_active = active
        user.save(update_fields=["is_active"])
        logger.info("user %s (%s) %s by %s", user.id, user.username, "reinstated" if active else "suspended",
                    actor.username if actor is not None else "an operator")
    # Also when nothing changed: a repeat heals a cache whose refresh failed after the first commit.
    transaction.on_commit(lambda: cache.refresh(user))
    return changed


def _lock_users(*user_ids: int) -> dict[int, User]:
    """Lock the users' rows, in id order like every count update, before touching their follows.

    Every follow write locks both users first, so two writes on the same pair
    (or on A->B and B->A) queue up instead of deadlocking.
    """
    return {u.id: u for u in User.objects.select_for_update(no_key=True)
            .filter(id__in=user_ids).order_by("id")}


def _counts_change(*, follower_id: int, followee_id: int, delta: int) -> None:
    for user_id in sorted((follower_id, followee_id)):
        field = "following_count" if user_id == follower_id else "followers_count"
        User.objects.filter(id=user_id).update(**{field: F(field) + delta})


@transaction.atomic
def follow_create(*, follower: User, followee_id: int) -> Follow.State:
    """Follow (or ask to follow a private account); idempotent. Returns the follow's state.

    Locks both users (in id order), inserts the edge and counts it. An accepted
    edge sends ``follow_changed(followed=True)``: ``timelines.receivers.
    follow_changed_update_timeline`` then backfills the followee's tweets into
    the follower's cached timeline after commit (``timelines.services.timeline_follow_update``).
    """
    if followee_id == follower.id:
        raise ApplicationError("You cannot follow yourself.")
    followee = _lock_users(follower.id, followee_id).get(followee_id)
    if followee is None or not followee.is_active:
        raise NotFound("No such user.")
    state = Follow.State.REQUESTED if followee.is_private else Follow.State.ACCEPTED
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Follow._meta.db_table} (follower_id, followee_id, state, created_at) "
            "VALUES (%s, %s, %s, now()) ON CONFLICT (follower_id, followee_id) DO NOTHING RETURNING state",
            [follower.id, followee.id, state],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        state = Follow.State(Follow.objects.values_list("state", flat=True).get(follower=follower, followee=followee))
    elif state == Follow.State.ACCEPTED:
        _counts_change(follower_id=follower.id, followee_id=followee.id, delta=1)
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
    _lock_users(follower.id, followee_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Follow._meta.db_table} WHERE follower_id = %s AND followee_id = %s RETURNING state",
            [follower.id, followee_id],
        )
        deleted = cursor.fetchone()
    if deleted and deleted[0] == Follow.State.ACCEPTED:
        _counts_change(follower_id=follower.id, followee_id=followee_id, delta=-1)
        _announce_follow_change(follower_id=follower.id, followee_id=followee_id, followed=False)


@transaction.atomic
def follow_request_approve(*, followee: User, follower_id: int) -> None:
    """Accept a pending request: counted, and announced like a follow (``follow_changed``)."""
    _lock_users(follower_id, followee.id)
    updated = Follow.objects.filter(
        follower_id=follower_id, followee=followee, state=Follow.State.REQUESTED
    ).update(state=Follow.State.ACCEPTED)
    if not updated:
        raise NotFound("No pending follow request from that user.")
    _counts_change(follower_id=follower_id, followee_id=followee.id, delta=1)
    _announce_follow_change(follower_id=follower_id, followee_id=followee.id, followed=True)


@transaction.atomic
def follow_request_reject(*, followee: User, follower_id: int) -> None:
    _lock_users(follower_id, followee.id)
    deleted, _ = Follow.objects.filter(
        follower_id=follower_id, followee=followee, state=Follow.State.REQUESTED
    ).delete()
    if not deleted:
        raise NotFound("No pending follow request from that user.")


def _follow_requests_accept_all(*, followee: User) -> None:
    pending = list(
        Follow.objects.filter(followee=followee, state=Follow.State.REQUESTED).values_list("follower_id", flat=True)
    )
    for follower_id in pending:
        follow_request_approve(followee=followee, follower_id=follower_id)


def _announce_follow_change(*, follower_id: int, followee_id: int, followed: bool) -> None:
    """The follower's accepted followees changed: tell whoever keeps state derived from them."""
    follow_changed.send(sender=Follow, follower_id=follower_id, followee_id=followee_id, followed=followed)
