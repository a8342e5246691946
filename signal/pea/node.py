"""Node: owns the hub, the bus and the resume signer; decides what each frame does.

Data flows one way: a connection hands a frame to `handle`, the node decides,
the bus carries it across nodes, `deliver` on the receiving node finds the
local connection through the hub and queues the frame on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator

from pea.bus import Bus, BusUnavailable, Envelope, member_info
from pea.config import Settings
from pea.connection import Connection
from pea.hub import Hub
from pea.metrics import Metrics
from pea.protocol import (
    PONG_FRAME,
    Close,
    Join,
    Leave,
    Ping,
    ProtocolError,
    Signal,
    encode_data,
    parse,
    peer_joined_frame,
    peer_left_frame,
    reconnect_frame,
    signal_frame,
    welcome_frame,
)
from pea.resume import ResumeSigner
from pea.tasks import Supervisor

log = logging.getLogger("pea.node")

VIEW_REFRESH_MIN_INTERVAL = 1.0
HEARTBEAT_SLICE = 200


class _RoomLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def new_peer_id() -> str:
    return secrets.token_urlsafe(12)  # 96 random bits, 16 base64url characters


class Node:
    def __init__(self, settings: Settings, bus: Bus, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.metrics = metrics or Metrics()
        self.hub: Hub[Connection] = Hub()
        self.signer = ResumeSigner(settings.effective_secret())
        self.connections: set[Connection] = set()
        self.draining = False
        self._room_locks: dict[str, _RoomLock] = {}
        self._view_checked: dict[str, float] = {}
        self._subscribed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.tasks = Supervisor(self.metrics.task_failures)
        self._config = {
            "ice_servers": settings.ice_servers,
            "max_frame_bytes": settings.max_frame_bytes,
            "resume_grace_ms": int(settings.resume_grace * 1000),
        }

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self.deliver, self._resync, self.tasks)
        self._tasks.append(self.tasks.start("heartbeat", self._heartbeat_loop))

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

    # -- frames from clients -------------------------------------------------

    async def handle(self, conn: Connection, text: str) -> None:
        try:
            message = parse(text)
            if isinstance(message, Signal):
                self.metrics.frames_in.inc("signal")
                await self._signal(conn, message)
            elif isinstance(message, Join):
                self.metrics.frames_in.inc("join")
                await self._join(conn, message)
            elif isinstance(message, Leave):
                self.metrics.frames_in.inc("leave")
                if conn.room is None:
                    raise ProtocolError("not-joined", "Join a room before leaving it.", "leave")
                await self._release(conn, departure=True)
            elif isinstance(message, Ping):
                self.metrics.frames_in.inc("ping")
                conn.send(PONG_FRAME)
        except ProtocolError as exc:
            if exc.code in ("bad-json", "bad-message"):
                self.metrics.frames_in.inc("invalid")
            conn.error(exc)
            if exc.code == "unavailable" and conn.room is None:
                conn.close(Close.TRY_AGAIN, "signalling unavailable")

    async def _join(self, conn: Connection, msg: Join) -> None:
        if conn.room is not None or conn.joining:
            raise ProtocolError(
                "already-joined", "You are already in a room; leave it first.", "join"
            )
        if self.draining:
            conn.send(reconnect_frame(random.randint(0, 1000)))
            conn.close(Close.SERVICE_RESTART, "node draining")
            return
        if not self.bus.healthy:
            raise ProtocolError(
                "unavailable", "Signalling is unavailable right now; try again shortly.", "join"
            )
        room = msg.room
        resume_peer = self.signer.verify(msg.resume, room) if msg.resume else None
        info = member_info(msg.name, self.bus.node_id)
        peer = new_peer_id()
        conn.joining = True
        conn.buffered = []
        try:
            async with self._room_lock(room):
                self.hub.add_pending(room, conn)
                try:
                    await self._ensure_subscribed(room)
                    if resume_peer is not None:
                        self._detach(room, resume_peer, "resumed on another connection")
                    result = await self.bus.join(
                        room,
                        peer,
                        info,
                        self.settings.max_peers_per_room,
                        resume_peer,
                        peer_joined_frame(peer, msg.name),
                    )
                finally:
                    self.hub.remove_pending(room, conn)
                if result.status == "full":
                    await self._maybe_unsubscribe(room)
                    raise ProtocolError(
                        "room-full",
                        f"This room already holds {self.settings.max_peers_per_room} peers.",
                        "join",
                    )
        except BusUnavailable:
            raise ProtocolError(
                "unavailable", "Signalling is unavailable right now; try again shortly.", "join"
            ) from None
        finally:
            conn.joining = False
            buffered, conn.buffered = conn.buffered or [], None
        if conn.closing:
            # The connection went away while joining: undo, as a lost connection.
            with contextlib.suppress(BusUnavailable):
                await self.bus.away(room, result.peer)
            return
        conn.room, conn.peer, conn.info = room, result.peer, info
        self.hub.add(room, result.peer, conn, set(result.members))
        self._update_gauges()
        peers = [{"peer": p, "name": n} for p, n in result.members.items()]
        conn.send(
            welcome_frame(
                room, result.peer, peers, self.signer.issue(room, result.peer), self._config
            )
        )
        # Events published while the join was in flight, minus those the member
        # list already reflects.
        for raw in buffered:
            env = Envelope.parse(raw)
            if env.kind == "J" and (env.peer == result.peer or env.peer in result.members):
                continue
            if env.kind == "L" and env.peer not in result.members:
                continue
            self._deliver_to(conn, env)
        log.debug("peer %s %s room %s", result.peer, result.status, room)

    async def _signal(self, conn: Connection, msg: Signal) -> None:
        room, sender = conn.room, conn.peer
        if room is None or sender is None:
            raise ProtocolError("not-joined", "Join a room before sending signals.", "signal")
        to = msg.to
        if to == sender or not (self.hub.knows(room, to) or await self._refresh_knows(room, to)):
            raise ProtocolError("unknown-peer", "No other peer of your room has that id.", "signal")
        frame = signal_frame(sender, encode_data(msg.data))
        local = self.hub.get(room, to)
        if local is not None:
            local.send(frame)
            return
        try:
            await self.bus.publish(room, Envelope.signal(to, time.time_ns(), frame))
        except BusUnavailable:
            raise ProtocolError(
                "unavailable",
                "Signalling is unavailable right now; the signal was not delivered.",
                "signal",
            ) from None

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

    async def disconnect(self, conn: Connection, departure: bool) -> None:
        # pea.admission adds and removes the connection from self.connections.
        if conn.room is not None:
            await self._release(conn, departure)

    async def _release(self, conn: Connection, departure: bool) -> None:
        """Take the peer out of its room: a departure at once, otherwise after the grace period."""
        room, peer = conn.room, conn.peer
        conn.room = conn.peer = None
        if room is None or peer is None:
            return
        if self.hub.remove(room, peer, conn):
            try:
                if departure:
                    await self.bus.leave(room, peer)
                else:
                    await self.bus.away(room, peer)
            except BusUnavailable:
                # No longer heartbeated, the member expires and is reported left by
                # whichever node sees it first once the bus is back.
                log.info("bus unavailable while releasing peer %s", peer)
        self._update_gauges()
        async with self._room_lock(room):
            await self._maybe_unsubscribe(room)

    def _detach(self, room: str, peer: str, reason: str) -> None:
        """Close a local connection whose peer now lives elsewhere, without releasing it."""
        old = self.hub.get(room, peer)
        if old is None:
            return
        self.hub.remove(room, peer, old)
        old.room = old.peer = None
        old.close(Close.NORMAL, reason)
        self._update_gauges()

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
        for conn in self.hub.pending(room):
            if conn.buffered is not None:
                conn.buffered.append(raw)
        if env.kind == "S":
            self.metrics.relay_latency.observe(max(0, time.time_ns() - env.sent_ns) / 1e9)
            target = self.hub.get(room, env.peer)
            if target is not None:
                target.send(env.rest)
            return
        if env.kind == "T":
            if env.rest != self.bus.node_id:
                self._detach(room, env.peer, "resumed on another node")
            return
        if env.kind == "J":
            self.hub.note_joined(room, env.peer)
        else:
            self.hub.note_left(room, env.peer)
        for peer, conn in self.hub.local(room).items():
            if peer != env.peer:
                self._deliver_to(conn, env)

    def _deliver_to(self, conn: Connection, env: Envelope) -> None:
        if env.kind == "J":
            conn.send(env.rest)
        elif env.kind == "L":
            conn.send(peer_left_frame(env.peer))
        elif env.kind == "S" and env.peer == conn.peer:
            conn.send(env.rest)

    # -- presence ----------------------------------------------------------------

    async def _refresh_presence(self, upsert: bool = False) -> None:
        """Heartbeat every local member, a slice of rooms at a time, yielding to
        the event loop between slices: one pass over ten thousand rooms at once
        stalled every relay on the node for tens of milliseconds."""
        rooms = list(self.hub.rooms())
        for start in range(0, len(rooms), HEARTBEAT_SLICE):
            members = {
                room: {peer: conn.info for peer, conn in peers.items()}
                for room, peers in rooms[start : start + HEARTBEAT_SLICE]
            }
            await self.bus.heartbeat(members, upsert=upsert)
            await asyncio.sleep(0)
        if not rooms:
            await self.bus.heartbeat({}, upsert=upsert)

    async def _heartbeat_loop(self) -> None:
        # Runs under the task supervisor: an unexpected failure is logged, counted
        # and the loop restarted, instead of presence silently never refreshing.
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            self.metrics.bus_healthy.set(1 if self.bus.healthy else 0)
            self.metrics.bus_reconnects.set(self.bus.reconnects)
            if not self.bus.healthy:
                continue
            try:
                await self._refresh_presence()
            except BusUnavailable as exc:
                log.info("heartbeat skipped, bus unavailable: %s", exc)

    async def _resync(self) -> None:
        """After the bus reconnects: restore our members (Redis may have lost them),
        then, once every live node has done the same, reconcile the views and
        report peers that vanished meanwhile as left."""
        await self._refresh_presence(upsert=True)
        await asyncio.sleep(self.settings.presence_lease)
        for room, local in self.hub.rooms():
            try:
                members = set(await self.bus.members(room))
            except BusUnavailable:
                return
            for gone in self.hub.view(room) - members - set(local):
                for conn in local.values():
                    conn.send(peer_left_frame(gone))
            self.hub.set_view(room, members | set(local))

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

    def _update_gauges(self) -> None:
        self.metrics.peers.set(self.hub.peer_count)
        self.metrics.rooms.set(self.hub.room_count)
