"""The author cache: the public face of a user (``id -> username, display name, active``,
when they joined and their follow counts, the token version), and who holds a username.

Authentication of reads checks ``active`` (and a JWT's token version) here instead of in PostgreSQL, and the
Mastodon API builds the accounts of a page's statuses from it
(``users_and_names``); tweets carry their author's summary in their own entries.
An entry lives at ``<prefix>u2:<id>`` (``u2``: the layout with the account
fields; entries of an older layout are simply never read). Each carries the
row's ``cache_version``, which a PostgreSQL trigger (migration 0006) bumps in
every UPDATE that changes a field the entry holds, by the services, the admin or
plain SQL alike; as concurrent writers of one row queue on its lock, the version
grows in commit order. Reads fill misses with ``SET NX``; every change (a follow
count's too, the neighbours' of a suspended or reinstated user included)
rewrites the entry after commit from the row as committed then, with a script
that writes only over an entry of the same or an older version
(``refresh_many``). So whatever order fills and refreshes reach Redis in, an
entry read before a change never replaces one read after it while that one is
cached, and once every change's refresh has run the entry holds the row as last
committed. (Only an entry dropped in
between, by its TTL or ``evict_many``, forgets the version it held: a fill that
read the row earlier may then land; the change's ``AccountChange`` replay
rewrites a name, privacy or suspension within seconds.) With Redis unreachable,
reads are answered from PostgreSQL alone, filling nothing.

A username is found through ``<prefix>un:<lower-cased name>`` (the user's id, or
0 for no such user, briefly): an entry is believed only while the user it names
still has that name, so a rename or a deletion needs no invalidation here.
"""
from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db.models.functions import Lower
from redis.exceptions import NoScriptError

from core import redis as core_redis

from .metrics import AUTHOR_CACHE_HITS, AUTHOR_CACHE_MISSES
from .models import User

TTL_SECONDS = 24 * 3600
NO_SUCH_NAME_TTL_SECONDS = 60  # how long a name that no one holds may stay unlinked once someone takes it
_UNREACHABLE = core_redis.UNREACHABLE

logger = logging.getLogger(__name__)


def _key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}u2:{user_id}"


def _name_key(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}un:{name}"


FIELDS = ("id", "username", "display_name", "is_active", "is_private", "date_joined", "followers_count",
          "following_count", "cache_version", "token_version")

# Overwrite an entry unless it holds a newer version of the row (ARGV: the entry, its
# version, the TTL). An equal version is the same committed row: rewriting it is harmless.
_SET_IF_NOT_OLDER = core_redis.Script("""
local current = redis.call('GET', KEYS[1])
if current then
    local ok, entry = pcall(cjson.decode, current)
    if ok and type(entry) == 'table' and tonumber(entry['v']) and tonumber(entry['v']) > tonumber(ARGV[2]) then
        return 0
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
""")


@dataclass(frozen=True, slots=True)
class CachedUser:
    """A user as the cache holds them: what authenticating a reader and showing an account need."""

    user_id: int
    username: str
    display_name: str
    active: bool
    private: bool
    joined: datetime
    followers: int
    following: int
    version: int  # the row's cache_version, which the refresh script compares
    token_version: int  # the row's: a reader's JWT issued under an older one is refused

    def pack(self) -> bytes:
        return orjson.dumps({"user_id": str(self.user_id), "username": self.username,
                             "display_name": self.display_name, "active": self.active, "private": self.private,
                             "joined": self.joined.isoformat(), "followers": self.followers,
                             "following": self.following, "v": self.version, "tv": self.token_version})

    @classmethod
    def unpack(cls, raw: bytes) -> CachedUser:
        entry = orjson.loads(raw)
        return cls(user_id=int(entry["user_id"]), username=entry["username"], display_name=entry["display_name"],
                   active=entry["active"], private=entry["private"], joined=datetime.fromisoformat(entry["joined"]),
                   followers=entry["followers"], following=entry["following"], version=entry["v"],
                   token_version=entry.get("tv", 0))

    def to_user(self) -> User:
        """A ``User`` with the fields the entry holds, and only those: for showing, never for saving."""
        return User(id=self.user_id, username=self.username, display_name=self.display_name, is_active=self.active,
                    is_private=self.private, date_joined=self.joined, followers_count=self.followers,
                    following_count=self.following)


def entry_of(user: User) -> CachedUser:
    """What the cache holds for ``user``'s row (read with at least ``FIELDS``)."""
    return CachedUser(user_id=user.id, username=user.username, display_name=user.display_name,
                      active=user.is_active, private=user.is_private, joined=user.date_joined,
                      followers=user.followers_count, following=user.following_count, version=user.cache_version,
                      token_version=user.token_version)


def prefetch(round_trip: core_redis.RoundTrip, user_id: int) -> core_redis.Reply[bytes | Exception | None]:
    """Ask for ``user_id``'s summary within a round trip made by the caller; then
    ``get_or_fill_many([user_id], prefetched=...)`` reads it from the reply."""
    return round_trip.add(lambda pipe: pipe.get(_key(user_id)), lambda replies: replies[0])


def get_or_fill_many(user_ids: list[int], prefetched: core_redis.Reply[bytes | Exception | None] | None = None
                     ) -> dict[int, CachedUser]:
    """Cached users by id, from the cache, filling misses from PostgreSQL in one query
    (with Redis unreachable: all from PostgreSQL, filling nothing). ``prefetched``: the
    one user's cached value, already asked for (``prefetch``); unless the trip failed."""
    if not user_ids:
        return {}
    found: dict[int, CachedUser] = {}
    if prefetched is not None and prefetched.made and not isinstance(prefetched.value, Exception):
        cached, reachable = [prefetched.value], True
    else:
        try:
            cached = core_redis.mget([_key(uid) for uid in user_ids])
            reachable = True
        except _UNREACHABLE:
            logger.warning("author cache unreachable: reading %d users from PostgreSQL", len(user_ids))
            cached, reachable = [None] * len(user_ids), False
    for uid, value in zip(user_ids, cached, strict=True):
        if value is not None:
            found[uid] = CachedUser.unpack(value)
    misses = [uid for uid in user_ids if uid not in found]
    AUTHOR_CACHE_HITS.inc(len(user_ids) - len(misses))
    if misses:
        AUTHOR_CACHE_MISSES.inc(len(misses))
        fills = {}
        for user in User.objects.filter(id__in=misses).only(*FIELDS):
            found[user.id] = fills[user.id] = entry_of(user)
        if reachable and fills:
            pipe = core_redis.connection().pipeline(transaction=False)
            for uid, entry in fills.items():
                pipe.set(_key(uid), entry.pack(), ex=TTL_SECONDS, nx=True)
            try:
                pipe.execute()
            except _UNREACHABLE:
                logger.warning("author cache unreachable: %d users read but not cached", len(fills))
    return found


def refresh(user: User) -> None:
    """Overwrite the cached summary with ``user``'s row (read from PostgreSQL, with
    its ``cache_version``), unless the entry holds a newer version of it."""
    refresh_many([user])


def refresh_many(users: list[User]) -> None:
    """``refresh`` for several users, in one round trip."""
    if users:
        pipe = core_redis.connection().pipeline(transaction=False)
        for user in users:
            _SET_IF_NOT_OLDER.queue(pipe, keys=[_key(user.id)],
                                    args=[entry_of(user).pack(), user.cache_version, TTL_SECONDS])
        replies = pipe.execute(raise_on_error=False)
        again = [user for user, reply in zip(users, replies, strict=True) if isinstance(reply, NoScriptError)]
        for user in again:  # a server that did not know the script yet (restarted, failed over)
            _SET_IF_NOT_OLDER(keys=[_key(user.id)], args=[entry_of(user).pack(), user.cache_version, TTL_SECONDS])
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
                raise reply


def refresh_from_db(*, user_ids: Collection[int]) -> None:
    """Rewrite the entries of ``user_ids`` from their rows as committed now (call after
    commit: one query, one round trip)."""
    refresh_many(list(User.objects.filter(id__in=user_ids).only(*FIELDS)))


def users_many(user_ids: list[int]) -> dict[int, User]:
    """The users of ``user_ids`` that exist, by id, as the cache knows them (``get_or_fill_many``'s
    entries as unsaved ``User`` objects holding the public fields)."""
    return {uid: entry.to_user() for uid, entry in get_or_fill_many(user_ids).items()}


def users_and_names(*, user_ids: list[int], names: set[str]) -> tuple[dict[int, CachedUser], dict[str, CachedUser]]:
    """The users of ``user_ids`` that exist, by id, and the active users holding ``names``
    (lower-cased), by name, as the cache holds them (``get_or_fill_many``'s entries). Warm:
    one round trip for the names, one for the users, and no query; names not cached are
    looked up in one query."""
    sorted_names = sorted(names)
    cached: list = []
    if sorted_names:
        try:
            cached = core_redis.mget([_name_key(name) for name in sorted_names])
        except _UNREACHABLE:
            cached = [None] * len(sorted_names)
    ids = {name: int(value) for name, value in zip(sorted_names, cached, strict=True) if value is not None}
    users = get_or_fill_many(sorted(set(user_ids) | {uid for uid in ids.values() if uid}))
    found = {name: users[uid] for name, uid in ids.items() if uid in users and users[uid].username.lower() == name}
    unknown = [name for name in sorted_names if name not in found and ids.get(name) != 0]
    if unknown:
        held = {}
        for row in User.objects.annotate(name=Lower("username")).filter(name__in=unknown).only(*FIELDS):
            held[row.username.lower()] = entry_of(row)
        try:
            pipe = core_redis.connection().pipeline(transaction=False)
            for name in unknown:
                entry = held.get(name)
                pipe.set(_name_key(name), entry.user_id if entry else 0,
                         ex=TTL_SECONDS if entry else NO_SUCH_NAME_TTL_SECONDS)
            pipe.execute()
        except _UNREACHABLE:
            logger.warning("author cache unreachable: %d usernames read but not cached", len(unknown))
        found.update(held)
    wanted = set(user_ids)
    return ({uid: user for uid, user in users.items() if uid in wanted},
            {name: user for name, user in found.items() if user.active})


def evict_many(user_ids: Collection[int]) -> None:
    """Drop the summaries of ``user_ids`` (users deleted: a token naming them is then refused)."""
    if user_ids:
        core_redis.delete([_key(uid) for uid in user_ids])


def evict(user_id: int) -> None:
    evict_many({user_id})
