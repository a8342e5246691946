"""The Lua membership scripts of both Redis buses and the arguments they take.

The scripts are package data in bus/lua/; `lib.lua` holds the functions they
share. Keys of a room share the hash tag `{room}` (`pea:{room}:m` member infos,
`pea:{room}:d` deadlines, channel `pea:{room}`), so on Redis Cluster every room
lives on one shard. The scripts use Redis's own clock: atomic across nodes,
immune to node clock skew.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from typing import Any

from pea.bus import JoinResult, info_name

NAMES = ("join", "leave", "away", "heartbeat", "members")
_WITHOUT_LIB = {"leave"}

Args = list[str | int]


def script(name: str, publish: str = "PUBLISH") -> str:
    """A Lua script of bus/lua/, with the shared functions before it if it uses
    them, publishing with `publish` (Redis Cluster's sharded pub/sub: SPUBLISH)."""
    files = importlib.resources.files("pea.bus") / "lua"
    text = (files / f"{name}.lua").read_text(encoding="utf-8")
    if name not in _WITHOUT_LIB:
        text = (files / "lib.lua").read_text(encoding="utf-8") + text
    return text.replace("redis.call('PUBLISH'", f"redis.call('{publish}'")


def keys(room: str) -> list[str]:
    return [f"pea:{{{room}}}:m", f"pea:{{{room}}}:d"]


def channel(room: str) -> str:
    return f"pea:{{{room}}}"


def room_of(channel: str) -> str:
    return channel[5:-1]


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True)
class MembershipArgs:
    """The scripts' argument lists (ARGV) for one node; times in milliseconds."""

    node_id: str
    live_ms: int
    grace_ms: int
    ttl_ms: int

    @classmethod
    def of(cls, node_id: str, lease: float, grace: float) -> MembershipArgs:
        live_ms = int((lease + grace) * 1000)
        return cls(node_id, live_ms, int(grace * 1000), live_ms * 2 + 10_000)

    def join(
        self,
        room: str,
        peer: str,
        info: str,
        limit: int,
        resume_peer: str | None,
        joined_frame: str,
    ) -> Args:
        return [
            channel(room),
            peer,
            info,
            limit,
            self.live_ms,
            resume_peer or "",
            joined_frame,
            self.ttl_ms,
            self.node_id,
        ]

    def leave(self, room: str, peer: str) -> Args:
        return [channel(room), peer]

    def away(self, peer: str) -> Args:
        return [peer, self.grace_ms]

    def heartbeat(self, room: str, peers: dict[str, str], upsert: bool) -> Args:
        args: Args = [channel(room), self.live_ms, self.ttl_ms, "1" if upsert else "0"]
        for peer, info in peers.items():
            args += [peer, info]
        return args

    def members(self, room: str) -> Args:
        return [channel(room)]


def join_result(reply: Any) -> JoinResult:
    """The join script's reply: status, the peer it admitted, the room's members."""
    status, who, flat = reply
    others = {p: info_name(i) for p, i in _pairs(flat).items() if p != who}
    return JoinResult(status, who, others)


def members_result(flat: list[str]) -> dict[str, str | None]:
    return {p: info_name(i) for p, i in _pairs(flat).items()}
