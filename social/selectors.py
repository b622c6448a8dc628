"""Reads of users and the follow graph."""

from core.exceptions import Forbidden, NotFound

from .models import Follow, User


def user_get(*, user_id: int) -> User:
    user = User.objects.active().filter(id=user_id).first()
    if user is None:
        raise NotFound("No such user.")
    return user


def _users_page(*, edges, id_field: str, limit: int, cursor: int | None) -> tuple[list[User], int | None]:
    """Keyset page over follow edges: ordered by the other user's id, ``cursor`` the last one seen.
    Suspended users are not listed (they vanish from lists, as from counts)."""
    if cursor is not None:
        edges = edges.filter(**{f"{id_field}__gt": cursor})
    edges = edges.filter(**{f"{id_field.removesuffix('_id')}__is_active": True})
    ids = list(edges.order_by(id_field).values_list(id_field, flat=True)[: limit + 1])
    has_more = len(ids) > limit
    ids = ids[:limit]
    by_id = User.objects.in_bulk(ids)
    users = [by_id[i] for i in ids if i in by_id]
    return users, (ids[-1] if has_more else None)


def may_see_account(*, viewer_id: int, account_id: int, private: bool) -> bool:
    """Whether ``viewer_id`` may see the tweets and graph of an account already read (whether it
    is ``private`` included): ``User.objects.seen_by``'s rule, asked of PostgreSQL only for a
    private account seen by someone else."""
    if not private or viewer_id == account_id:
        return True
    return User.objects.filter(id=account_id).seen_by(viewer_id).exists()


def may_see_graph_of(*, viewer_id: int, user: User) -> bool:
    """Whether ``viewer_id`` may list whom ``user`` follows and who follows them (``may_see_account``)."""
    return may_see_account(viewer_id=viewer_id, account_id=user.id, private=user.is_private)


def _graph_owner(*, viewer_id: int, user_id: int) -> User:
    user = user_get(user_id=user_id)
    if not may_see_graph_of(viewer_id=viewer_id, user=user):
        raise Forbidden("This account is private: only its accepted followers see its followers and following.")
    return user


def followers_page(*, viewer_id: int, user_id: int, limit: int, cursor: int | None):
    _graph_owner(viewer_id=viewer_id, user_id=user_id)
    edges = Follow.objects.accepted().filter(followee_id=user_id)
    return _users_page(edges=edges, id_field="follower_id", limit=limit, cursor=cursor)


def following_page(*, viewer_id: int, user_id: int, limit: int, cursor: int | None):
    _graph_owner(viewer_id=viewer_id, user_id=user_id)
    edges = Follow.objects.accepted().filter(follower_id=user_id)
    return _users_page(edges=edges, id_field="followee_id", limit=limit, cursor=cursor)


def follow_requests_page(*, user_id: int, limit: int, cursor: int | None):
    edges = Follow.objects.requested().filter(followee_id=user_id)
    return _users_page(edges=edges, id_field="follower_id", limit=limit, cursor=cursor)


def user_by_username(*, username: str) -> User:
    """The active user of that name (case-insensitively); ``NotFound`` otherwise."""
    user = User.objects.active().filter(username__iexact=username).first()
    if user is None:
        raise NotFound("No such user.")
    return user


def follow_states(*, viewer_id: int, user_ids: list[int]) -> tuple[dict[int, str], dict[int, str]]:
    """The follow edges between ``viewer_id`` and each of ``user_ids``, with their states:
    (the viewer's towards them, theirs towards the viewer), keyed by the other user's id."""
    outgoing = dict(Follow.objects.filter(follower_id=viewer_id, followee_id__in=user_ids)
                    .values_list("followee_id", "state"))
    incoming = dict(Follow.objects.filter(followee_id=viewer_id, follower_id__in=user_ids)
                    .values_list("follower_id", "state"))
    return outgoing, incoming


def users_count() -> int:
    """How many accounts are active (not suspended)."""
    return User.objects.active().count()
