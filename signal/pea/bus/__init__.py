"""The cluster bus: room membership plus a pub/sub channel per room.

`make_bus(url)` picks the implementation by URL scheme, as encode/broadcaster
does: no URL gives the in-memory bus (one node), `redis://` the Redis bus, which
is imported only then. Both keep the same contract, and the same tests run
against both (tests/unit/test_bus_contract.py):

* `join` is atomic: it purges members whose deadline passed (publishing their
  `left`), then resumes the peer if `resume_peer` is still a member, else admits
  a new peer unless the room is full, publishing `joined`.
* A live member's deadline is `lease + grace` ahead and is pushed forward by
  the owning node's `heartbeat`; a member whose connection was lost is `away`
  with a deadline `grace` ahead. Past its deadline a member is removed by the
  next `join` or `heartbeat` on any node of the room and reported `left` once.
* `leave` removes a member and publishes `left` only if it was still there.
* Messages on a room's channel from one publishing call site arrive in order.

Channel messages are short text envelopes, decoded by `Envelope.parse`:
`J <peer> <frame>`, `L <peer>`, `S <to> <sent_ns> <frame>`, `T <peer> <node>`.
A `frame` is already the JSON text the client will receive, so relaying a
signal never re-encodes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from pea.tasks import Supervisor

Deliver = Callable[[str, str], None]
"""Called with (room, envelope) for every message on a subscribed room's channel."""

OnReconnect = Callable[[], Coroutine[Any, Any, None]]


class BusUnavailable(Exception):
    """The bus cannot be reached; the node answers `unavailable`."""


@dataclass(frozen=True, slots=True)
class JoinResult:
    status: Literal["joined", "resumed", "full"]
    peer: str
    members: dict[str, str | None]
    """Other members of the room (peer → name), the joining peer excluded."""


def member_info(name: str | None, node: str) -> str:
    # ASCII: whatever the name holds, the info can be sent to Redis; one bad info
    # in a node's heartbeat would stop it refreshing every room's presence.
    return json.dumps({"name": name, "node": node}, separators=(",", ":"))


def info_name(info: str) -> str | None:
    try:
        name = json.loads(info).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Literal["J", "L", "S", "T"]
    peer: str
    """The peer that joined, left or was taken over, or the receiver of a signal."""
    rest: str
    """The client frame (J, S) or the taking-over node (T)."""
    sent_ns: int = 0

    @staticmethod
    def joined(peer: str, frame: str) -> str:
        return f"J {peer} {frame}"

    @staticmethod
    def left(peer: str) -> str:
        return f"L {peer}"

    @staticmethod
    def signal(to: str, sent_ns: int, frame: str) -> str:
        return f"S {to} {sent_ns} {frame}"

    @staticmethod
    def takeover(peer: str, node: str) -> str:
        return f"T {peer} {node}"

    @classmethod
    def parse(cls, raw: str) -> Envelope:
        kind = raw[:1]
        if kind == "S":
            _, to, sent, frame = raw.split(" ", 3)
            return cls("S", to, frame, int(sent))
        if kind == "J":
            _, peer, frame = raw.split(" ", 2)
            return cls("J", peer, frame)
        if kind == "L":
            return cls("L", raw[2:], "")
        if kind == "T":
            _, peer, node = raw.split(" ", 2)
            return cls("T", peer, node)
        raise ValueError(f"unknown envelope {raw[:16]!r}")


class Bus(Protocol):
    node_id: str

    @property
    def healthy(self) -> bool: ...

    @property
    def reconnects(self) -> int: ...

    @property
    def publishes_dropped(self) -> int:
        """Messages accepted by `publish` that never reached the bus (it failed under them)."""

    async def start(
        self, deliver: Deliver, on_reconnect: OnReconnect, tasks: Supervisor | None = None
    ) -> None:
        """Start delivering; long-running tasks run under `tasks` (a private
        supervisor if None), so their failures are logged, counted and restarted."""

    async def close(self) -> None: ...

    async def subscribe(self, room: str) -> None:
        """Return once messages published to the room from now on will be delivered."""

    async def unsubscribe(self, room: str) -> None: ...

    async def join(
        self,
        room: str,
        peer: str,
        info: str,
        limit: int,
        resume_peer: str | None,
        joined_frame: str,
    ) -> JoinResult: ...

    async def leave(self, room: str, peer: str) -> None: ...

    async def away(self, room: str, peer: str) -> None: ...

    async def publish(self, room: str, envelope: str) -> None:
        """Queue an envelope for the room's channel. An envelope that cannot be
        encoded as UTF-8 raises ProtocolError `bad-message`, failing only itself."""

    async def heartbeat(self, rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        """Refresh this node's live members (room → peer → info) and reap expired ones.

        Only members still present are refreshed, so a heartbeat racing a `leave`
        cannot bring a departed peer back; `upsert` (after a reconnect, when Redis
        may have lost everything) restores them all."""

    async def members(self, room: str) -> dict[str, str | None]: ...


def make_bus(url: str | None, node_id: str, lease: float, grace: float) -> Bus:
    if url is not None and url.split("://", 1)[0] in {"redis+cluster", "rediss+cluster"}:
        from pea.bus.cluster import RedisClusterBus

        return RedisClusterBus(url, node_id, lease=lease, grace=grace)
    if url is None or url.startswith("memory://"):
        from pea.bus.memory import MemoryBus

        return MemoryBus(node_id, lease=lease, grace=grace)
    from pea.bus.redis import RedisBus

    return RedisBus(url, node_id, lease=lease, grace=grace)
