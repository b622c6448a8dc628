"""Users and the follow graph.

Follower and following counts live on the user row and are only ever changed
with ``F()`` updates inside the transaction that inserts or deletes the follow
row, so they stay exact under concurrency; they decide who is a celebrity.

Who may see an account's tweets and graph is decided here once, as QuerySet
methods (``User.objects.seen_by``, ``Follow.objects.accepted``); raw SQL takes
the same predicates from ``accepted_sql``.
"""
from typing import ClassVar

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

from core import usernames

USERNAME_PATTERN = r"^[A-Za-z0-9_]{1,15}$"
DISPLAY_NAME_MAX_LENGTH = 50  # the column's, and so every API's, limit
TOKEN_VERSION_CLAIM = "tv"  # a JWT's claim: the user's token_version when it was issued


def token_version_current(claims, current: int) -> bool:
    """Whether a JWT of these ``claims`` was issued under the user's ``current`` token version
    (or a later one: a cached user may lag); one without the claim was issued under 0."""
    issued_under = claims.get(TOKEN_VERSION_CLAIM, 0)
    return type(issued_under) is int and issued_under >= current


class UserQuerySet(models.QuerySet):
    def active(self):
        """Users not suspended."""
        return self.filter(is_active=True)

    def seen_by(self, viewer_id: int):
        """The accounts whose tweets and graph ``viewer_id`` may see: every public account; a
        private one only by itself and its accepted followers (``seen_by_q``)."""
        return self.filter(seen_by_q(viewer_id))


# django-stubs cannot follow from_queryset on auth's generic UserManager; the methods are the queryset's above.
class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    def get_by_natural_key(self, username):
        """The account a login names: ``core.usernames.canonical`` (NFKC, lower case)
        looked up in the unique index on ``lower(username)``, exactly the name the login
        limit counted (``core.throttling``); anything but a string names no account."""
        if not isinstance(username, str):
            raise self.model.DoesNotExist
        return self.named(username).get()

    def named(self, username: str):
        """The account named ``username`` as a login spells it (``get_by_natural_key``), as a queryset."""
        return self.alias(username_lower=Lower("username")).filter(username_lower=usernames.canonical(username))


class User(AbstractUser):
    username = models.CharField(
        max_length=15,
        unique=True,
        validators=[RegexValidator(USERNAME_PATTERN, "1-15 letters, digits or underscores.")],
        help_text="1-15 of A-Z, a-z, 0-9 and _; unique regardless of case.",
    )
    display_name = models.CharField(max_length=DISPLAY_NAME_MAX_LENGTH, blank=True, default="")
    is_private = models.BooleanField(default=False)
    followers_count = models.PositiveIntegerField(default=0)
    following_count = models.PositiveIntegerField(default=0)
    # The newest tweet id this user has posted: post-time guard that keeps each
    # author's ids strictly increasing even across processes.
    last_tweet_id = models.BigIntegerField(default=0)
    # Set on the first tweet posted while a celebrity: that tweet, and every
    # later one posted at or above the threshold, is pulled by readers instead
    # of fanned out, so followers must merge this author's pulled tweets.
    has_pulled_tweets = models.BooleanField(default=False)
    # Bumped by a trigger (migration 0006) in every UPDATE that changes a field the
    # author cache holds, whoever writes it: the cache keeps the newest version it saw.
    cache_version = models.BigIntegerField(default=0)
    # Bumped by ``save`` when the user's sessions end (a new password, a suspension): a
    # JWT carries the version it was issued under, and one issued under an older
    # version is refused (``social.authentication``), whatever its expiry.
    token_version = models.BigIntegerField(default=0, db_default=0)

    objects: ClassVar[UserManager] = UserManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    def set_unusable_password(self) -> None:
        super().set_unusable_password()
        self._password_disabled = True

    def save(self, *args, **kwargs) -> None:
        """Save; when this save sets a new password (``set_password``: a change, a reset, the
        admin's form, ``changepassword``; not the rehash of the same password at login) or
        disables it, or writes ``is_active`` false (a suspension), bump ``token_version`` (in
        the UPDATE: a stale instance bumps it all the same) and mark the save ``ends_sessions``:
        its ``post_save`` receiver ends every session of the user in this transaction
        (``receivers.user_saved_end_sessions``)."""
        update_fields = kwargs.get("update_fields")
        self.ends_sessions = not self._state.adding and (
            # Django's own mark of a new password, which the rehash at login clears first.
            getattr(self, "_password", None) is not None or getattr(self, "_password_disabled", False)
            or (not self.is_active and (update_fields is None or "is_active" in update_fields)))
        if self.ends_sessions:
            self.token_version = models.F("token_version") + 1
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "token_version"}
        ended = self.ends_sessions
        try:
            super().save(*args, **kwargs)
        finally:
            self.ends_sessions = self._password_disabled = False
        if ended:
            self.refresh_from_db(fields=["token_version"])


class FollowQuerySet(models.QuerySet):
    def accepted(self):
        """Follows in force (a private account's requests not yet approved are not)."""
        return self.filter(state=Follow.State.ACCEPTED)

    def requested(self):
        """Requests to follow a private account, awaiting its answer."""
        return self.filter(state=Follow.State.REQUESTED)


class Follow(models.Model):
    class State(models.TextChoices):
        ACCEPTED = "accepted"
        REQUESTED = "requested"

    objects = FollowQuerySet.as_manager()

    follower = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    followee = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=9, choices=State.choices, default=State.ACCEPTED)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_unique_pair"),
            models.CheckConstraint(condition=~models.Q(follower=models.F("followee")), name="follow_not_self"),
        ]
        indexes = [
            # Fan-out reads an author's followers over this: with the state in the index,
            # an index-only scan (no heap page a follower) once the table is vacuumed.
            models.Index(fields=["followee", "follower"], include=["state"], name="follow_followee_follower_st"),
        ]

    def __str__(self) -> str:
        return f"{self.follower_id} -> {self.followee_id} ({self.state})"


class AccountChange(models.Model):
    """A change to who may see an account or how it is shown, to be replayed onto the caches.

    Written by a PostgreSQL trigger on ``social_user`` (migrations 0003, 0004) in
    the very transaction that changes ``is_active``, ``is_private``,
    ``display_name`` or ``username``, or deletes the user — by the services, the
    admin, a command or plain SQL alike. The
    services refresh the author cache right after commit; if that refresh is
    lost (Redis unreachable, the process killed), ``services.account_changes_replay``
    (beat, every ``ACCOUNT_CHANGE_REPLAY_SECONDS``) applies the row within
    seconds, so privacy and suspension never hang on a cache that outlived them.
    """

    user_id = models.BigIntegerField()  # no foreign key: a deleted user's change must survive it
    created_at = models.DateTimeField(db_default=models.functions.Now())

    def __str__(self) -> str:
        return f"change to {self.user_id}"


def seen_by_q(viewer_id: int, *, account: str = "") -> models.Q:
    """The one rule of who sees an account's tweets and graph, as a filter: the account is
    public, is the viewer, or is followed by the viewer (accepted). ``account``: the lookup
    path from the filtered model to the user (``"author__"`` from a tweet)."""
    followed = Follow.objects.accepted().filter(follower_id=viewer_id).values("followee_id")
    return (models.Q(**{f"{account}is_private": False}) | models.Q(**{f"{account}id": viewer_id})
            | models.Q(**{f"{account}id__in": followed}))


def accepted_sql(alias: str = "") -> str:
    """``Follow.objects.accepted()``'s predicate for raw SQL over the follow table (as ``alias``,
    if given): a literal of the enum's own value, so a plan may use it like a constant."""
    column = f"{alias}.state" if alias else "state"
    return f"{column} = '{Follow.State.ACCEPTED.value}'"
