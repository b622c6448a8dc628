"""Reads of users and the follow graph."""
from core.exceptions import Forbidden, NotFound

from .models import Follow, User


def user_get(*, user_id: int) -> User:
    user = User.objects.filter(id=user_id, is_active=True).first()
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


def may_see_graph_of(*, viewer_id: int, user: User) -> bool:
    """Whether ``viewer_id`` may list whom ``user`` follows and who follows them: anyone
    for a public account; for a private one, the account itself and its accepted followers."""
    return (not user.is_private or viewer_id == user.id
            or Follow.objects.filter(follower_id=viewer_id, followee=user, state=Follow.State.ACCEPTED).exists())


def _graph_owner(*, viewer_id: int, user_id: int) -> User:
    user = user_get(user_id=user_id)
    if not may_see_graph_of(viewer_id=viewer_id, user=user):
        raise Forbidden("This account is private: only its accepted followers see its followers and following.")
    return user


def followers_page(*, viewer_id: int, user_id: int, limit: int, cursor: int | None):
    _graph_owner(viewer_id=viewer_id, user_id=user_id)
    edges = Follow.objects.filter(followee_id=user_id, state=Follow.State.ACCEPTED)
    return _users_page(edges=edges, id_field="follower_id", limit=limit, cursor=cursor)


def following_page(*, viewer_id: int, user_id: int, limit: int, cursor: int | None):
    _graph_owner(viewer_id=viewer_id, user_id=user_id)
    edges = Follow.objects.filter(follower_id=user_id, state=Follow.State.ACCEPTED)
    return _users_page(edges=edges, id_field="followee_id", limit=limit, cursor=cursor)


def follow_requests_page(*, user_id: int, limit: int, cursor: int | None):
    edges = Follow.objects.filter(followee_id=user_id, state=Follow.State.REQUESTED)
    return _users_page(edges=edges, id_field="follower_id", limit=limit, cursor=cursor)


def user_by_username(*, username: str) -> User:
    """The active user of that name (case-insensitively); ``NotFound`` otherwise."""
    user = User.objects.filter(username__iexact=username, is_active=True).first()
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
