"""Node: coordinates the hub, the bus, presence and drain; holds no per-peer state.

Data flows one way: a connection hands a frame to its `Session`, which asks the
node to join, release or look up peers; the bus carries events across nodes;
`deliver` on the receiving node finds the local sessions through the hub and
offers each event to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pea.bus import Bus, BusUnavailable, Envelope, JoinResult
from pea.config import Settings
from pea.hub import Hub
from pea.ice import IceConfig
from pea.metrics import Metrics
from pea.presence import Presence
from pea.protocol import PROTOCOL_VERSION, Close, reconnect_frame
from pea.resume import ResumeSigner
from pea.tasks import Supervisor

if TYPE_CHECKING:
    from pea.connection import Connection
    from pea.session import Session

log = logging.getLogger("pea.node")

VIEW_REFRESH_MIN_INTERVAL = 1.0


class _RoomLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class Node:
    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.metrics = metrics or Metrics()
        self.hub: Hub[Session] = Hub()
        self.signer = ResumeSigner(settings.effective_secret())
        self.connections: set[Connection] = set()
        """Open admitted connections; pea.admission adds and removes them."""
        self.draining = False
        self.tasks = Supervisor(self.metrics.task_failures)
        self.presence = Presence(settings, bus, self.hub, self.metrics)
        self.metrics.count_bus_drops(lambda: bus.publishes_dropped)
        self._room_locks: dict[str, _RoomLock] = {}
        self._view_checked: dict[str, float] = {}
        self._subscribed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.ice = IceConfig(settings)

    def client_config(self) -> dict[str, Any]:
        """The welcome's `config`: made per welcome, since TURN credentials are per client."""
        return {
            "protocol": PROTOCOL_VERSION,
            "ice_servers": self.ice.servers(),
            "relay": self.ice.relay,
            "max_frame_bytes": self.settings.max_frame_bytes,
            "resume_grace_ms": int(self.settings.resume_grace * 1000),
        }

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self.deliver, self.presence.resync, self.tasks)
        self._tasks.append(self.presence.start(self.tasks))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bus.close()

    @property
    def ready(self) -> bool:
        return self.not_ready_reason is None

    @property
    def not_ready_reason(self) -> str | None:
        if self.draining:
            return "draining"
        if not self.bus.healthy:
            return "bus disconnected"
        broken = self.tasks.broken
        if broken:
            task, error = next(iter(broken.items()))
            return f"task {task} keeps failing: {error}"
        return None

    def accepting(self) -> bool:
        return len(self.connections) < self.settings.max_connections

    # -- membership ----------------------------------------------------------

    async def join(
        self,
        session: Session,
        room: str,
        peer: str,
        info: str,
        resume_peer: str | None,
        joined_frame: str,
    ) -> JoinResult:
        """Subscribe to the room and join it on the bus; events of the room are
        buffered for `session` meanwhile. A room this node no longer needs (the
        join failed, or was full) is unsubscribed again."""
        async with self._room_lock(room):
            self.hub.add_pending(room, session)
            # Before the join: its echo may come back before the join's own reply.
            self.hub.expect_announcement(room, peer)
            try:
                await self._ensure_subscribed(room)
                if resume_peer is not None:
                    self._detach(room, resume_peer, "resumed on another connection")
                result = await self.bus.join(
                    room, peer, info, self.settings.max_peers_per_room, resume_peer, joined_frame
                )
            except BusUnavailable:
                self.hub.note_announced(room, peer)
                self.hub.remove_pending(room, session)
                with contextlib.suppress(BusUnavailable):
                    await self._maybe_unsubscribe(room)
                raise
            if result.status != "joined":
                self.hub.note_announced(room, peer)  # resumed or full: no `joined` was sent
            self.hub.remove_pending(room, session)
            if result.status == "full":
                await self._maybe_unsubscribe(room)
            return result

    def admit(self, room: str, peer: str, session: Session, members: set[str]) -> None:
        self.hub.add(room, peer, session, members)
        self.update_gauges()

    async def release(self, room: str, peer: str, session: Session, departure: bool) -> None:
        if self.hub.remove(room, peer, session):
            try:
                if departure:
                    await self.bus.leave(room, peer)
                else:
                    await self.bus.away(room, peer)
            except BusUnavailable:
                # No longer heartbeated, the member expires and is reported left by
                # whichever node sees it first once the bus is back.
                log.info("bus unavailable while releasing peer %s", peer)
        self.update_gauges()
        await self.forget_room(room)

    async def forget_room(self, room: str) -> None:
        """Unsubscribe from `room` if no local session needs it any more."""
        async with self._room_lock(room):
            await self._maybe_unsubscribe(room)

    def _detach(self, room: str, peer: str, reason: str) -> None:
        """Close a local session whose peer now lives elsewhere, without releasing it."""
        old = self.hub.get(room, peer)
        if old is None:
            return
        self.hub.remove(room, peer, old)
        old.detach(reason)
        self.update_gauges()

    async def knows(self, room: str, peer: str) -> bool:
        return self.hub.knows(room, peer) or await self._refresh_knows(room, peer)

    async def _refresh_knows(self, room: str, peer: str) -> bool:
        """The local view may lag behind Redis (after an outage): ask it, at most once a second."""
        now = time.monotonic()
        if now - self._view_checked.get(room, 0.0) < VIEW_REFRESH_MIN_INTERVAL:
            return False
        self._view_checked[room] = now
        try:
            members = await self.bus.members(room)
        except BusUnavailable:
            return False
        self.hub.set_view(room, set(members))
        return peer in members

    # -- room subscriptions ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def _room_lock(self, room: str) -> AsyncIterator[None]:
        """Serialises subscribe, join and unsubscribe of one room; the lock is
        dropped with its last user, so idle rooms cost nothing."""
        entry = self._room_locks.get(room)
        if entry is None:
            entry = self._room_locks[room] = _RoomLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._room_locks[room]

    async def _ensure_subscribed(self, room: str) -> None:
        if room not in self._subscribed:
            await self.bus.subscribe(room)
            self._subscribed.add(room)

    async def _maybe_unsubscribe(self, room: str) -> None:
        if room in self._subscribed and not self.hub.has_local(room):
            self._subscribed.discard(room)
            self._view_checked.pop(room, None)
            await self.bus.unsubscribe(room)

    # -- events from the bus ---------------------------------------------------

    def deliver(self, room: str, raw: str) -> None:
        env = Envelope.parse(raw)
        for session in self.hub.pending(room):
            if session.buffered is not None:
                session.buffered.append(raw)
        if env.kind == "S":
            self.metrics.relay_latency.observe(max(0, time.time_ns() - env.sent_ns) / 1e9)
            target = self.hub.get(room, env.peer)
            if target is not None:
                target.offer(env)
            return
        if env.kind == "T":
            if env.rest != self.bus.node_id:
                self._detach(room, env.peer, "resumed on another node")
            return
        if env.kind == "J":
            self.hub.note_joined(room, env.peer)
            self.hub.note_announced(room, env.peer)
        else:
            self.hub.note_left(room, env.peer)
        for session in self.hub.local(room).values():
            session.offer(env)

    # -- drain -------------------------------------------------------------------

    async def drain(self) -> None:
        """SIGTERM: readiness goes false, then peers are asked to reconnect elsewhere in
        batches and closed with 1012; their membership stays for the grace period
        so they resume on another node unnoticed by the rest of their rooms."""
        if self.draining:
            return
        self.draining = True
        self.metrics.draining.set(1)
        budget = self.settings.drain_timeout
        deadline = time.monotonic() + budget
        conns = list(self.connections)
        log.info("draining %d connections within %.1f s", len(conns), budget)
        batch = self.settings.drain_batch
        batches = max(1, -(-len(conns) // batch))
        pause = min(0.25, budget / 2 / batches)
        for start in range(0, len(conns), batch):
            for conn in conns[start : start + batch]:
                conn.send(reconnect_frame(random.randint(0, 500)))
                conn.close(Close.SERVICE_RESTART, "node restarting; reconnect")
            if start + batch < len(conns):
                await asyncio.sleep(pause)
        waiting = [asyncio.ensure_future(c.wait_closed()) for c in conns]
        if waiting:
            _, still_open = await asyncio.wait(
                waiting, timeout=max(0.1, deadline - time.monotonic())
            )
            for fut in still_open:
                fut.cancel()
            if still_open:
                log.warning(
                    "%d connections did not close within the drain timeout", len(still_open)
                )
        log.info("drain complete")

    def update_gauges(self) -> None:
        self.metrics.peers.set(self.hub.peer_count)
        self.metrics.rooms.set(self.hub.room_count)
