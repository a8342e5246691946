"""The in-memory bus: one process, no Redis. Several `MemoryBus` objects may share
one `MemoryBroker`, which lets tests run multi-node scenarios in one process,
as encode/broadcaster's memory backend does: `create_app(settings, bus=MemoryBus(
..., broker=broker))` per node.

Nodes sharing a broker may run on different event loops (each Starlette
TestClient runs its app on a loop of its own, in its own thread): the broker
then hands each subscriber its messages on the subscriber's own loop, in the
order they were published, and a lock keeps the membership tables whole."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from pea.bus import Deliver, Envelope, JoinResult, OnReconnect, info_name
from pea.errors import Errors

if TYPE_CHECKING:
    from pea.tasks import Supervisor


@dataclass
class _Room:
    info: dict[str, str] = field(default_factory=dict)
    deadline: dict[str, float] = field(default_factory=dict)


class MemoryBroker:
    def __init__(self) -> None:
        self.rooms: dict[str, _Room] = {}
        self.subscribers: dict[str, dict[str, Deliver]] = {}
        self.lock = threading.RLock()
        self._loops: dict[str, asyncio.AbstractEventLoop] = {}

    def subscribe(self, room: str, node: str, deliver: Deliver) -> None:
        self.subscribers.setdefault(room, {})[node] = deliver
        self._loops[node] = asyncio.get_running_loop()

    def publish(self, room: str, envelope: str) -> None:
        here = asyncio.get_running_loop()
        for node, deliver in list(self.subscribers.get(room, {}).items()):
            loop = self._loops.get(node, here)
            if loop is here:
                deliver(room, envelope)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(deliver, room, envelope)

    def reap(self, room: str, now: float) -> None:
        state = self.rooms.get(room)
        if state is None:
            return
        for peer in [p for p, d in state.deadline.items() if d <= now]:
            del state.deadline[peer]
            state.info.pop(peer, None)
            self.publish(room, Envelope.left(peer))
        if not state.deadline:
            del self.rooms[room]


P = ParamSpec("P")
R = TypeVar("R")


def _locked(
    method: Callable[Concatenate[MemoryBus, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[MemoryBus, P], Coroutine[Any, Any, R]]:
    """Runs a method under the broker's lock; the methods never suspend, so the
    lock is never held across a wait."""

    async def locked(self: MemoryBus, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._broker.lock:
            return await method(self, *args, **kwargs)

    return locked


class MemoryBus:
    def __init__(
        self,
        node_id: str,
        *,
        lease: float,
        grace: float,
        broker: MemoryBroker | None = None,
    ) -> None:
        self.node_id = node_id
        self._lease = lease
        self._grace = grace
        self._broker = broker or MemoryBroker()
        self._deliver: Deliver | None = None
        self._swept_at = 0.0

    @property
    def healthy(self) -> bool:
        return True

    @property
    def reconnects(self) -> int:
        return 0

    @property
    def publishes_dropped(self) -> int:
        return 0

    async def start(
        self, deliver: Deliver, on_reconnect: OnReconnect, tasks: Supervisor | None = None
    ) -> None:
        # No task of its own: everything happens in the callers' tasks.
        self._deliver = deliver

    async def close(self) -> None:
        with self._broker.lock:
            for subs in self._broker.subscribers.values():
                subs.pop(self.node_id, None)

    async def subscribe(self, room: str) -> None:
        assert self._deliver is not None, "start() the bus first"
        with self._broker.lock:
            self._broker.subscribe(room, self.node_id, self._deliver)

    async def unsubscribe(self, room: str) -> None:
        with self._broker.lock:
            subs = self._broker.subscribers.get(room)
            if subs is not None:
                subs.pop(self.node_id, None)
                if not subs:
                    del self._broker.subscribers[room]

    @_locked
    async def join(
        self,
        room: str,
        peer: str,
        info: str,
        limit: int,
        resume_peer: str | None,
        joined_frame: str,
    ) -> JoinResult:
        now = time.monotonic()
        self._broker.reap(room, now)
        state = self._broker.rooms.setdefault(room, _Room())
        live_until = now + self._lease + self._grace
        if resume_peer is not None and resume_peer in state.deadline:
            state.info[resume_peer] = info
            state.deadline[resume_peer] = live_until
            self._broker.publish(room, Envelope.takeover(resume_peer, self.node_id))
            return JoinResult("resumed", resume_peer, self._others(state, resume_peer))
        if len(state.deadline) >= limit:
            if not state.deadline:
                del self._broker.rooms[room]
            return JoinResult("full", peer, {})
        state.info[peer] = info
        state.deadline[peer] = live_until
        self._broker.publish(room, Envelope.joined(peer, joined_frame))
        return JoinResult("joined", peer, self._others(state, peer))

    @staticmethod
    def _others(state: _Room, peer: str) -> dict[str, str | None]:
        return {p: info_name(i) for p, i in state.info.items() if p != peer}

    @_locked
    async def leave(self, room: str, peer: str) -> None:
        state = self._broker.rooms.get(room)
        if state is None or peer not in state.deadline:
            return
        del state.deadline[peer]
        state.info.pop(peer, None)
        if not state.deadline:
            del self._broker.rooms[room]
        self._broker.publish(room, Envelope.left(peer))

    @_locked
    async def away(self, room: str, peer: str) -> None:
        state = self._broker.rooms.get(room)
        if state is not None and peer in state.deadline:
            state.deadline[peer] = time.monotonic() + self._grace

    @_locked
    async def publish(self, room: str, envelope: str) -> None:
        # The same contract as the Redis bus, which must encode: nothing that
        # could not cross a real bus is delivered here either.
        if not envelope.isascii():
            try:
                envelope.encode()
            except UnicodeEncodeError:
                raise Errors.NOT_UNICODE.error() from None
        self._broker.publish(room, envelope)

    @_locked
    async def heartbeat(self, rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        now = time.monotonic()
        live_until = now + self._lease + self._grace
        for room, peers in rooms.items():
            state = self._broker.rooms.setdefault(room, _Room())
            for peer, info in peers.items():
                if not upsert and peer not in state.deadline:
                    continue
                state.info[peer] = info
                state.deadline[peer] = live_until
            self._broker.reap(room, now)
        # Rooms nobody on any node is subscribed to still expire their away
        # members; a full sweep once a heartbeat interval is plenty.
        if now - self._swept_at >= self._lease / 3:
            self._swept_at = now
            for room in [r for r in self._broker.rooms if r not in self._broker.subscribers]:
                self._broker.reap(room, now)

    @_locked
    async def members(self, room: str) -> dict[str, str | None]:
        state = self._broker.rooms.get(room)
        return {} if state is None else {p: info_name(i) for p, i in state.info.items()}
