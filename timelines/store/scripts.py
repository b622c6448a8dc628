"""The store's Lua scripts, each a file in ``lua/`` beside this module, loaded by name.

A script that calls a shared helper function (``older``, ``advance``) names it,
and the helper's file in ``lua/lib/`` is put before the script's own text: the
server runs one script, called by its SHA1 through ``core.redis.Script`` (which
loads it again on a server that does not know it, and runs it per hash slot on
a cluster, or once per node for one made ``cross_slot``).
"""
from pathlib import Path

from core import redis as core_redis

LUA = Path(__file__).resolve().with_name("lua")


def load(name: str, *, uses: tuple[str, ...] = (), cross_slot: bool = False) -> core_redis.Script:
    """The script ``lua/<name>.lua``, after the helpers ``lua/lib/<helper>.lua`` it ``uses``;
    ``cross_slot``: it may run over the keys of many slots on a cluster (``core.redis.Script``)."""
    parts = [(LUA / "lib" / f"{helper}.lua").read_text() for helper in uses]
    return core_redis.Script("".join([*parts, (LUA / f"{name}.lua").read_text()]), cross_slot=cross_slot)
