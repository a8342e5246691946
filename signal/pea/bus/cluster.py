"""The Redis Cluster bus: the Redis bus's contract and Lua scripts on sharded pub/sub.

A room's keys and channel carry the room as hash tag, so they live on one shard;
its messages go out with `SPUBLISH` and come in through `SSUBSCRIBE`, which
Redis keeps inside that shard (classic `PUBLISH` is broadcast to every node of a
cluster and stops scaling with it). The membership scripts run on the room's
shard and publish there with `SPUBLISH`.

Connections per node are constant, two per shard whatever the number of rooms:
a command lane (shards.Lane: scripts, publishes, topology queries) and a
subscriber holding every room of that shard this node serves.

Why not redis-py's `RedisCluster.pubsub()`: its sharded pub/sub reads the
per-shard connections one after another with a timeout each (a quiet shard
delays messages of a busy one), it follows a slot's move only after some other
command of the same client met a MOVED, it has no health signal per shard, and
its commands take a connection per concurrent call. So the slot map is ours,
refreshed every second and on any redirect or lost connection; a failover or a
migrated slot moves the affected rooms to their new shard within about a second
of Redis settling it.

No message is delivered twice: when rooms move, the subscriber of the old shard
lets go of them (or is closed, when the old master became a replica, which would
repeat its new master's messages) before the new shard is asked for them. None is
reordered either: a room's publishes follow its unsettled ones to their shard, so a
migrated slot's redirects carry them to the new one in the order sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AskError, ClusterDownError, MovedError, NoScriptError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError

from pea.bus import BusUnavailable, Deliver, JoinResult, OnReconnect, scripts
from pea.bus.liveness import PingWatch
from pea.bus.shards import REDIS_ERRORS, Addr, ClusterURL, Lane, SlotMap, slot_of
from pea.errors import Errors
from pea.tasks import Supervisor

log = logging.getLogger("pea.bus")

HEARTBEAT_BATCH = 500
REDIRECTS = 5
MAX_BACKLOG = 50_000
"""Commands queued for one shard beyond which publishes are refused: a slow or
stalled shard must not grow the node's memory without bound."""


class _Script:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


class _Subscriber:
    """One subscriber connection to one shard's master, for every room of that
    shard this node serves."""

    def __init__(self, bus: RedisClusterBus, addr: Addr) -> None:
        self.bus = bus
        self.addr = addr
        self.connected = False
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._client = aioredis.Redis(
            host=addr[0],
            port=addr[1],
            socket_connect_timeout=bus._timeout,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            client_name=f"pea-{bus.node_id}-sub",
            health_check_interval=0,
            # Bytes: redis-py recognises a PONG outside subscribed mode only so.
            **{k: v for k, v in bus._conn_kwargs.items() if v is not None},
        )

    def start(self) -> None:
        self._task = self.bus._supervisor.start(f"bus-shard-{self.addr[1]}", self._supervise)

    async def close(self) -> None:
        """Return once this connection can deliver nothing more."""
        self.connected = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await self._task
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), 1)

    async def ssubscribe(self, rooms: list[str]) -> None:
        pubsub = self._pubsub
        if not self.connected or pubsub is None:
            return  # sent on (re)connect
        by_slot: dict[int, list[str]] = defaultdict(list)
        for room in rooms:
            by_slot[slot_of(room)].append(scripts.channel(room))
        with contextlib.suppress(*REDIS_ERRORS):
            for channels in by_slot.values():
                await pubsub.ssubscribe(*channels)

    async def sunsubscribe(self, rooms: list[str]) -> None:
        pubsub = self._pubsub
        if not self.connected or pubsub is None:
            return
        with contextlib.suppress(*REDIS_ERRORS):
            for room in rooms:
                await pubsub.sunsubscribe(scripts.channel(room))

    async def _supervise(self) -> None:
        backoff = 0.1
        first = True
        while True:
            pubsub: Any = self._client.pubsub()
            connected_at: float | None = None
            try:
                await asyncio.wait_for(pubsub.connect(), self.bus._timeout)
                await self._connect(pubsub, first)
                first = False
                connected_at = time.monotonic()
                await self._listen(pubsub)
            except REDIS_ERRORS as exc:
                level = logging.WARNING if connected_at is not None else logging.DEBUG
                log.log(level, "bus shard %s:%d lost: %r", *self.addr, exc)
            finally:
                self.connected = False
                self._pubsub = None
                self.bus._shard_changed()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), 1)
            if connected_at is not None and time.monotonic() - connected_at > 10:
                backoff = 0.1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 2.0)

    async def _connect(self, pubsub: Any, first: bool) -> None:
        # Confirmed before messages of those rooms can flow: Redis answers the
        # SSUBSCRIBEs on this connection in order, after the PING below.
        rooms = self.bus._rooms_on(self.addr)
        self._pubsub = pubsub
        self.connected = True
        await self.ssubscribe(rooms)
        await pubsub.ping()
        deadline = time.monotonic() + self.bus._dead_after
        while True:
            msg = await pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise TimeoutError("Redis stopped confirming subscriptions")
            if self._handle(msg) == "pong":
                break
        if not first:
            self.bus._reconnects += 1
            log.warning(
                "bus shard %s:%d reconnected; %d rooms resubscribed", *self.addr, len(rooms)
            )
        self.bus._shard_changed()

    def _handle(self, msg: dict[str, Any]) -> str:
        kind = _text(msg["type"])
        if kind == "pong":
            return "pong"
        channel = _text(msg["channel"])
        if kind == "smessage":
            try:
                data = msg["data"].decode(errors="replace")
                self.bus._deliver_message(scripts.room_of(channel), data)
            except Exception:
                log.exception("delivering a bus message failed")
        elif kind == "ssubscribe":
            self.bus._confirmed(channel, self.addr)
        elif kind == "sunsubscribe":
            self.bus._released(scripts.room_of(channel), self.addr)
        return str(kind)

    async def _listen(self, pubsub: Any) -> None:
        bus = self.bus
        watch = PingWatch(bus._ping_interval, bus._dead_after)
        while True:
            try:
                msg = await pubsub.get_message(timeout=bus._ping_interval / 2)
            except (MovedError, ClusterDownError) as exc:
                # A SSUBSCRIBE this shard no longer serves: place those rooms anew.
                bus._request_refresh(f"{type(exc).__name__} on subscribe")
                msg = None
            now = time.monotonic()
            if msg is not None:
                watch.heard()
                self._handle(msg)
            if watch.ping_due(now):
                await pubsub.ping()
            watch.check(now)


@dataclass
class _Tail:
    """Where a room's newest publish went, and how many of its publishes are unsettled."""

    addr: Addr
    newest: int = 0
    unsettled: int = 0


class RedisClusterBus:
    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        lease: float,
        grace: float,
        ping_interval: float = 1.0,
        dead_after: float = 5.0,
        command_timeout: float = 2.0,
        topology_interval: float = 1.0,
    ) -> None:
        self.node_id = node_id
        self._url = ClusterURL.parse(url)
        self._conn_kwargs = self._url.connection_kwargs()
        self._args = scripts.MembershipArgs.of(node_id, lease, grace)
        self._ping_interval = ping_interval
        self._dead_after = dead_after
        self._timeout = command_timeout
        self._topology_interval = topology_interval
        # Same scripts as the single-Redis bus, publishing to the shard channel.
        self._scripts = {
            name: _Script(scripts.script(name, publish="SPUBLISH")) for name in scripts.NAMES
        }
        self._map: SlotMap | None = None
        self._lanes: dict[Addr, Lane] = {}
        self._subs: dict[Addr, _Subscriber] = {}
        self._rooms: set[str] = set()
        self._placed: dict[str, Addr] = {}
        """Room → the shard whose subscriber holds it (asked for or confirmed)."""
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        self._tails: dict[str, _Tail] = {}
        """Room → its publishes in flight. A publish follows the room's earlier ones to
        their lane while any is unsettled, whatever the slot map says meanwhile: when
        the slot has moved, Redis redirects them all, and they reach the new shard in
        the order sent (one lane answers in order, and redirects are sent as answered)."""
        self._published_count = 0
        self._reconnects = 0
        self._lost = 0
        self._deliver: Deliver | None = None
        self._on_reconnect: OnReconnect | None = None
        self._supervisor = Supervisor()
        self._tasks: list[asyncio.Task[None]] = []
        self._refresh = asyncio.Event()
        self._ready = asyncio.Event()
        self._was_ready = False
        self._moving = asyncio.Lock()
        self._state_ok = False
        self._resync_wanted = False
        self._unreachable = False
        self._resync_task: asyncio.Task[None] | None = None

    # -- state --------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """Every slot is served and this node is subscribed to every shard."""
        m = self._map
        if m is None or not m.complete or not self._state_ok:
            return False
        return all(a in self._subs and self._subs[a].connected for a in m.masters)

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def publishes_dropped(self) -> int:
        return self._lost

    def _shard_up(self, room: str) -> bool:
        """The room's shard is served and subscribed to: rooms of the other shards
        keep working while one shard fails over."""
        owner = self.shard_of(room)
        sub = self._subs.get(owner) if owner is not None else None
        return sub is not None and sub.connected

    def shard_of(self, room: str) -> Addr | None:
        """The master serving the room now (as this node last learned)."""
        return None if self._map is None else self._map.owner(slot_of(room))

    # -- lifecycle ------------------------------------------------------------

    async def start(
        self, deliver: Deliver, on_reconnect: OnReconnect, tasks: Supervisor | None = None
    ) -> None:
        self._deliver = deliver
        self._on_reconnect = on_reconnect
        if tasks is not None:
            self._supervisor = tasks
        self._tasks = [self._supervisor.start("bus-topology", self._follow_topology)]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            # A resync that failed has been logged by the supervisor already.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for sub in list(self._subs.values()):
            await sub.close()
        for lane in list(self._lanes.values()):
            await lane.close()
        self._subs.clear()
        self._lanes.clear()

    def _lane(self, addr: Addr) -> Lane:
        lane = self._lanes.get(addr)
        if lane is None:
            lane = Lane(addr, f"pea-{self.node_id}-cmd", self._timeout, **self._conn_kwargs)
            self._lanes[addr] = lane
        return lane

    # -- topology -----------------------------------------------------------------

    def _request_refresh(self, why: str) -> None:
        if not self._refresh.is_set():
            log.debug("bus topology refresh: %s", why)
        self._refresh.set()

    async def _follow_topology(self) -> None:
        self._refresh.set()
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._refresh.wait(), self._topology_interval)
            self._refresh.clear()
            new = await self._fetch_map()
            if new is None:
                continue
            if new != self._map:
                await self._apply(new)
            # Subscribers for every master, even one without rooms of ours yet,
            # so health means "every shard reachable".
            for addr in new.masters:
                if addr not in self._subs:
                    sub = self._subs[addr] = _Subscriber(self, addr)
                    sub.start()
            self._shard_changed()

    async def _fetch_map(self) -> SlotMap | None:
        known = list(self._map.masters) if self._map else []
        random.shuffle(known)
        candidates = known + [a for a in self._url.seeds if a not in known]
        for addr in candidates:
            try:
                lane = self._lane(addr)
                info = lane.submit(("CLUSTER", "INFO"))
                slot_map = SlotMap.parse(await lane.call("CLUSTER", "SLOTS"))
                state = await asyncio.wait_for(info, self._timeout)
                # A cluster settling after a restart refuses commands: not ready yet.
                self._state_ok = b"cluster_state:ok" in (
                    state if isinstance(state, bytes) else str(state).encode()
                )
            except (*REDIS_ERRORS, ValueError, IndexError, TypeError) as exc:
                log.debug("bus topology from %s:%d failed: %s", *addr, exc)
                continue
            if not slot_map.masters:
                continue
            # Command lanes only to masters: a seed that is a replica is let go.
            for stale in set(self._lanes) - slot_map.masters - {addr}:
                await self._lanes.pop(stale).close()
            if addr not in slot_map.masters and addr in self._lanes:
                await self._lanes.pop(addr).close()
            self._unreachable = False
            return slot_map
        if self._map is not None and not self._unreachable:
            log.warning("bus: no Redis Cluster node answers")
        self._unreachable = True
        return None

    async def _apply(self, new: SlotMap) -> None:
        """Adopt a new slot map: rooms whose shard changed move to it; subscribers of
        nodes that are masters no more are closed first (a former master now a
        replica would repeat its new master's messages)."""
        async with self._moving:
            old = self._map
            self._map = new
            if old is not None:
                log.warning(
                    "bus: Redis Cluster topology changed (%d masters, %s)",
                    len(new.masters),
                    "all slots served" if new.complete else "some slots not served",
                )
            for addr in set(self._subs) - new.masters:
                await self._subs.pop(addr).close()
            moving: dict[Addr | None, list[str]] = defaultdict(list)
            for room in self._rooms:
                owner = new.owner(slot_of(room))
                if self._placed.get(room) != owner:
                    moving[self._placed.get(room)].append(room)
            for src, rooms in moving.items():
                if src is not None and src in self._subs:
                    await self._subs[src].sunsubscribe(rooms)
                for room in rooms:
                    self._placed.pop(room, None)
            for rooms in moving.values():
                await self._place(rooms)
            if old is not None and moving:
                # A promoted replica may lack the last writes of its master.
                self._request_resync()

    async def _place(self, rooms: list[str]) -> None:
        m = self._map
        if m is None:
            return
        by_owner: dict[Addr, list[str]] = defaultdict(list)
        for room in rooms:
            owner = m.owner(slot_of(room))
            if owner is not None:
                by_owner[owner].append(room)
        for owner, group in by_owner.items():
            for room in group:
                self._placed[room] = owner
            sub = self._subs.get(owner)
            if sub is None:
                sub = self._subs[owner] = _Subscriber(self, owner)
                sub.start()
            await sub.ssubscribe(group)

    def _rooms_on(self, addr: Addr) -> list[str]:
        return [r for r, a in self._placed.items() if a == addr and r in self._rooms]

    def _shard_changed(self) -> None:
        if not self.healthy:
            if self._ready.is_set():
                self._ready.clear()
                self._request_refresh("a shard connection changed")
            return
        if self._ready.is_set():
            return
        self._ready.set()
        if not self._was_ready:
            self._was_ready = True
            log.info("bus connected to Redis Cluster (%d shards)", len(self._subs))
        else:
            # Back after an outage, a failover or a restart: Redis may have lost
            # writes, so this node's members are written again.
            log.warning("bus: Redis Cluster reachable again")
            self._request_resync()

    def _keep(self, task: asyncio.Task[None]) -> None:
        """Track a one-off task for close(), forgetting finished ones."""
        self._tasks = [t for t in self._tasks if not t.done()]
        self._tasks.append(task)

    def _request_resync(self) -> None:
        if not self._was_ready or self._on_reconnect is None:
            return
        self._resync_wanted = True
        if self._resync_task is None or self._resync_task.done():
            self._resync_task = self._supervisor.once("bus-resync", self._resync())
            self._keep(self._resync_task)

    async def _resync(self) -> None:
        """Restore this node's members once the cluster answers again (a shard that
        is back may still refuse commands while the cluster settles); again if
        another shard came back meanwhile."""
        assert self._on_reconnect is not None
        deadline = time.monotonic() + 60
        while self._resync_wanted and time.monotonic() < deadline:
            self._resync_wanted = False
            try:
                await self._on_reconnect()
            except BusUnavailable as exc:
                self._resync_wanted = True
                log.info("bus resync waits for the cluster: %s", exc)
                await asyncio.sleep(0.5)

    def _confirmed(self, channel: str, addr: Addr) -> None:
        waiting = self._pending.get(channel)
        if waiting and self._placed.get(scripts.room_of(channel)) == addr:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(None)
            if not waiting:
                del self._pending[channel]

    def _released(self, room: str, addr: Addr) -> None:
        # Redis let go of a room we still want there: its slot moved away.
        if room in self._rooms and self._placed.get(room) == addr:
            self._placed.pop(room, None)
            self._request_refresh("a shard released a room")
            self._keep(self._supervisor.once("bus-replace", self._replace(room)))

    async def _replace(self, room: str) -> None:
        # Give the slot map a moment to follow, then subscribe where the room is now.
        await asyncio.sleep(0.05)
        async with self._moving:
            if room in self._rooms and room not in self._placed:
                await self._place([room])

    def _deliver_message(self, room: str, data: str) -> None:
        assert self._deliver is not None
        self._deliver(room, data)

    # -- subscriptions ------------------------------------------------------------

    async def subscribe(self, room: str) -> None:
        if not self._shard_up(room):
            raise BusUnavailable("bus not connected")
        channel = scripts.channel(room)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, deque()).append(fut)
        self._rooms.add(room)
        try:
            async with self._moving:
                await self._place([room])
            await asyncio.wait_for(fut, self._dead_after)
        except (*REDIS_ERRORS, BusUnavailable) as exc:
            self._rooms.discard(room)
            self._placed.pop(room, None)
            waiting = self._pending.get(channel)
            if waiting and fut in waiting:
                waiting.remove(fut)
            raise BusUnavailable(str(exc) or "subscribe timed out") from None

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        addr = self._placed.pop(room, None)
        if addr is not None and addr in self._subs:
            await self._subs[addr].sunsubscribe([room])

    # -- commands -----------------------------------------------------------------

    async def _command(self, room: str, *args: Any) -> Any:
        """Run one command on the room's shard, following MOVED/ASK/TRYAGAIN."""
        slot = slot_of(room)
        redirect: Addr | None = None
        asking = False
        for _ in range(REDIRECTS):
            target = redirect or self.shard_of(room)
            if target is None:
                self._request_refresh("slot not served")
                raise BusUnavailable(f"no Redis Cluster node serves slot {slot}")
            try:
                return await asyncio.wait_for(
                    self._lane(target).submit(args, asking=asking), self._timeout * 2
                )
            except MovedError as exc:
                # Follow it at once; the slot map catches up in the background.
                self._request_refresh("MOVED")
                redirect, asking = exc.node_addr, False
            except AskError as exc:
                redirect, asking = exc.node_addr, True
            except TryAgainError:
                redirect, asking = None, False
                await asyncio.sleep(0.05)
            except NoScriptError:
                raise
            except ClusterDownError as exc:
                self._request_refresh("CLUSTERDOWN")
                raise BusUnavailable(str(exc)) from None
            except REDIS_ERRORS as exc:
                self._request_refresh(f"{type(exc).__name__} from {target}")
                raise BusUnavailable(str(exc) or type(exc).__name__) from None
        raise BusUnavailable(f"slot {slot} kept moving")

    async def _eval(self, name: str, room: str, args: list[Any]) -> Any:
        script = self._scripts[name]
        keys = scripts.keys(room)
        try:
            return _text(await self._command(room, "EVALSHA", script.sha, 2, *keys, *args))
        except NoScriptError:
            # Loads the script too: the next EVALSHA on this shard finds it.
            return _text(await self._command(room, "EVAL", script.text, 2, *keys, *args))

    # -- membership -------------------------------------------------------

    async def join(
        self,
        room: str,
        peer: str,
        info: str,
        limit: int,
        resume_peer: str | None,
        joined_frame: str,
    ) -> JoinResult:
        args = self._args.join(room, peer, info, limit, resume_peer, joined_frame)
        return scripts.join_result(await self._eval("join", room, args))

    async def leave(self, room: str, peer: str) -> None:
        # The room's lane already carries this peer's signals ahead of this.
        await self._eval("leave", room, self._args.leave(room, peer))

    async def away(self, room: str, peer: str) -> None:
        await self._eval("away", room, self._args.away(peer))

    async def publish(self, room: str, envelope: str) -> None:
        if not self._shard_up(room):
            raise BusUnavailable("bus not connected")
        try:
            message = envelope.encode()
        except UnicodeEncodeError:
            raise Errors.NOT_UNICODE.error() from None
        tail = self._tails.get(room)
        target = self.shard_of(room)
        # Behind the room's unsettled publishes, unless their node is no master any more
        # (a failover): nothing redirects what went there, so following it orders nothing.
        if tail is not None and self._map is not None and tail.addr in self._map.masters:
            target = tail.addr
        if target is None:
            raise BusUnavailable("no Redis Cluster node serves this room")
        lane = self._lane(target)
        if lane.backlog >= MAX_BACKLOG:
            raise BusUnavailable("the room's shard is not keeping up")
        args = ("SPUBLISH", scripts.channel(room).encode(), message)
        if tail is None:
            tail = self._tails[room] = _Tail(target)
        tail.addr = target
        self._published_count += 1
        seq = tail.newest = self._published_count
        tail.unsettled += 1
        lane.submit(args).add_done_callback(lambda fut: self._published(fut, room, seq, args, 0))

    def _published(
        self, fut: asyncio.Future[Any], room: str, seq: int, args: tuple[Any, ...], tries: int
    ) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if isinstance(exc, AskError) and tries < REDIRECTS:
            # Not executed where it was sent: safe to send where Redis says. Done
            # in this callback, so later messages of the room queue behind it.
            self._request_refresh("publish redirected")
            asking = not isinstance(exc, MovedError)
            tail = self._tails.get(room)
            if asking is False and tail is not None and tail.newest == seq:
                # MOVED: the slot is there for good; the room's next publishes follow this
                # one. (ASK is for this command only: the next still go where this went.)
                tail.addr = exc.node_addr
            self._lane(exc.node_addr).submit(args, asking=asking).add_done_callback(
                lambda f: self._published(f, room, seq, args, tries + 1)
            )
            return
        tail = self._tails.get(room)
        if tail is not None:
            tail.unsettled -= 1
            if tail.unsettled <= 0:
                del self._tails[room]
        if fut.cancelled():
            self._lost += 1
            return
        if exc is None:
            return
        # Lost with its connection: not retried, as it may have gone out.
        self._lost += 1
        if isinstance(exc, (RedisConnectionError, OSError, asyncio.TimeoutError)):
            self._request_refresh("publish failed")
        log.debug("bus publish lost: %s", exc)

    async def heartbeat(self, rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        items = list(rooms.items())
        for start in range(0, len(items), HEARTBEAT_BATCH):
            calls = []
            for room, peers in items[start : start + HEARTBEAT_BATCH]:
                args = self._args.heartbeat(room, peers, upsert)
                calls.append(self._eval("heartbeat", room, args))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise (
                        result
                        if isinstance(result, BusUnavailable)
                        else BusUnavailable(str(result))
                    )

    async def members(self, room: str) -> dict[str, str | None]:
        flat = await self._eval("members", room, self._args.members(room))
        return scripts.members_result(flat)
