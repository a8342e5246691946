"""The Redis bus: membership in Redis, one pub/sub channel per room.

All membership changes are the Lua scripts of bus.scripts, whose keys and
channel of a room share a hash tag, so a move to Redis Cluster's sharded pub/sub
keeps every room on one shard.

Connections per node are constant: one pub/sub connection (subscribed to every
room with a local peer), one publishing connection fed by a queue that pipelines
whatever accumulated while the previous batch was in flight, and a small bounded
pool for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pea.bus import BusUnavailable, Deliver, JoinResult, OnReconnect, scripts
from pea.bus.liveness import PingWatch
from pea.errors import Errors
from pea.tasks import Supervisor

log = logging.getLogger("pea.bus")


_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
HEARTBEAT_BATCH = 500
SUBSCRIBE_BATCH = 1000


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """Redis errors, lost connections and timeouts become BusUnavailable."""
    try:
        yield
    except _REDIS_ERRORS as exc:
        raise BusUnavailable(str(exc)) from None


class _Publisher:
    """One connection, auto-pipelined: everything queued while a batch is in flight
    goes out in the next batch, in queue order, which keeps per-sender order.

    Messages are queued already encoded, so nothing in a batch can fail to encode
    and take the batch (or, before supervision, the whole publisher) down with it."""

    def __init__(self, client: aioredis.Redis, max_batch: int = 1024, max_queue: int = 50000):
        self._client = client
        self._queue: asyncio.Queue[tuple[bytes, bytes] | asyncio.Future[None]] = asyncio.Queue(
            max_queue
        )
        self._max_batch = max_batch
        self.lost = 0

    async def put(self, channel: bytes, message: bytes) -> None:
        item = (channel, message)
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            await self._queue.put(item)

    async def barrier(self) -> None:
        """Wait until everything queued before this call has been sent."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put(fut)
        await asyncio.wait_for(fut, 5)

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._send([item for item in batch if isinstance(item, tuple)])
            finally:
                # Even when the batch failed unexpectedly: a `leave` waiting on a
                # barrier must not wait for a batch that will never go out.
                for item in batch:
                    if isinstance(item, asyncio.Future) and not item.done():
                        item.set_result(None)

    async def _send(self, messages: list[tuple[bytes, bytes]]) -> None:
        if not messages:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, message in messages:
                    pipe.publish(channel, message)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self.lost += len(messages)
            log.warning("bus publish failed, %d messages lost: %s", len(messages), exc)
        except Exception:
            self.lost += len(messages)  # and the supervisor logs and restarts `run`
            raise


class RedisBus:
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
        pool_size: int = 8,
        **connection_kwargs: Any,
    ) -> None:
        self.node_id = node_id
        self._args = scripts.MembershipArgs.of(node_id, lease, grace)
        self._ping_interval = ping_interval
        self._dead_after = dead_after
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": command_timeout,
            "health_check_interval": 0,
            **connection_kwargs,
        }
        # Commands fail fast (one retry, bounded timeouts): a join must be
        # answered `unavailable`, not hang, while Redis is away.
        self._commands = aioredis.Redis(
            connection_pool=aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=pool_size,
                timeout=command_timeout,
                socket_timeout=command_timeout,
                retry=Retry(NoBackoff(), 1),
                client_name=f"pea-{node_id}-scripts",
                **common,
            )
        )
        self._publish_client = aioredis.Redis.from_url(
            url,
            single_connection_client=True,
            socket_timeout=command_timeout,
            retry=Retry(NoBackoff(), 1),
            client_name=f"pea-{node_id}-publish",
            **common,
        )
        # The listener supervises its own connection, so redis-py must not retry
        # behind its back.
        self._listen_client = aioredis.Redis.from_url(
            url,
            socket_timeout=None,
            retry=Retry(NoBackoff(), 0),
            client_name=f"pea-{node_id}-subscribe",
            **common,
        )
        self._join = self._commands.register_script(scripts.script("join"))
        self._leave = self._commands.register_script(scripts.script("leave"))
        self._away = self._commands.register_script(scripts.script("away"))
        self._heartbeat = self._commands.register_script(scripts.script("heartbeat"))
        self._members = self._commands.register_script(scripts.script("members"))
        self._publisher = _Publisher(self._publish_client)
        self._rooms: set[str] = set()
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        self._pubsub: Any = None
        self._healthy = False
        self._reconnects = 0
        self._deliver: Deliver | None = None
        self._on_reconnect: OnReconnect | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._supervisor = Supervisor()
        self._first_connect = asyncio.Event()

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def reconnects(self) -> int:
        return self._reconnects

    @property
    def publishes_dropped(self) -> int:
        return self._publisher.lost

    async def start(
        self, deliver: Deliver, on_reconnect: OnReconnect, tasks: Supervisor | None = None
    ) -> None:
        self._deliver = deliver
        self._on_reconnect = on_reconnect
        if tasks is not None:
            self._supervisor = tasks
        self._tasks = [
            self._supervisor.start("bus-listener", self._supervise),
            self._supervisor.start("bus-publisher", self._publisher.run),
        ]
        # Start serving even if Redis is down: readiness says so and joins get
        # `unavailable` until the listener connects.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._first_connect.wait(), 5)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *_REDIS_ERRORS):
                await task
        for client in (self._commands, self._publish_client, self._listen_client):
            with contextlib.suppress(*_REDIS_ERRORS):
                await client.aclose()
        self._healthy = False

    # -- listener ---------------------------------------------------------

    async def _supervise(self) -> None:
        """Keep the subscriber connected. Redis errors are expected and handled
        here; anything else propagates to the task supervisor, which logs it,
        counts it and runs this again."""
        backoff = 0.1
        while True:
            connected_at: float | None = None
            pubsub = self._listen_client.pubsub()
            try:
                await self._connect(pubsub)
                connected_at = time.monotonic()
                await self._listen(pubsub)
            except _REDIS_ERRORS as exc:
                level = logging.WARNING if connected_at or not self._reconnects else logging.DEBUG
                log.log(level, "bus connection lost: %s; reconnecting", exc or type(exc).__name__)
            finally:
                await self._drop(pubsub)
            if connected_at is not None and time.monotonic() - connected_at > 10:
                backoff = 0.1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 5.0)

    async def _connect(self, pubsub: Any) -> None:
        control = f"pea:node:{self.node_id}"
        channels = [control, *(scripts.channel(r) for r in self._rooms)]
        # In batches, each waited for: a node with thousands of rooms must not
        # send one huge command, nor give up on a slow Redis that is progressing.
        for start in range(0, len(channels), SUBSCRIBE_BATCH):
            batch = channels[start : start + SUBSCRIBE_BATCH]
            await asyncio.wait_for(pubsub.subscribe(*batch), self._dead_after)
            remaining = len(batch)
            while remaining:
                msg = await pubsub.get_message(timeout=self._dead_after)
                if msg is None:
                    raise TimeoutError("Redis stopped confirming subscriptions")
                if msg["type"] == "subscribe":
                    remaining -= 1
                elif msg["type"] == "message" and self._deliver is not None:
                    self._deliver(scripts.room_of(msg["channel"]), msg["data"])
        self._pubsub = pubsub
        self._healthy = True
        was_first = not self._first_connect.is_set()
        self._first_connect.set()
        if was_first:
            log.info("bus connected to Redis")
        else:
            self._reconnects += 1
            log.warning("bus reconnected to Redis; %d rooms resubscribed", len(self._rooms))
            if self._on_reconnect is not None:
                self._tasks.append(self._supervisor.once("bus-resync", self._on_reconnect()))

    async def _listen(self, pubsub: Any) -> None:
        assert self._deliver is not None
        deliver = self._deliver
        watch = PingWatch(self._ping_interval, self._dead_after)
        while True:
            msg = await pubsub.get_message(timeout=self._ping_interval / 2)
            now = time.monotonic()
            if msg is not None:
                watch.heard()
                kind = msg["type"]
                if kind == "message":
                    try:
                        deliver(scripts.room_of(msg["channel"]), msg["data"])
                    except Exception:
                        log.exception("delivering a bus message failed")
                elif kind == "subscribe":
                    waiting = self._pending.get(msg["channel"])
                    if waiting:
                        fut = waiting.popleft()
                        if not fut.done():
                            fut.set_result(None)
            if watch.ping_due(now):
                await pubsub.ping()
            watch.check(now)

    async def _drop(self, pubsub: Any) -> None:
        self._healthy = False
        self._pubsub = None
        for waiting in self._pending.values():
            for fut in waiting:
                if not fut.done():
                    fut.set_exception(BusUnavailable("bus connection lost"))
        self._pending.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pubsub.aclose(), 1)

    # -- subscriptions ----------------------------------------------------

    async def subscribe(self, room: str) -> None:
        pubsub = self._pubsub
        if not self._healthy or pubsub is None:
            raise BusUnavailable("bus not connected")
        channel = scripts.channel(room)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, deque()).append(fut)
        self._rooms.add(room)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(fut, self._dead_after)
        except (*_REDIS_ERRORS, BusUnavailable) as exc:
            self._rooms.discard(room)
            raise BusUnavailable(str(exc)) from None

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        pubsub = self._pubsub
        if pubsub is not None and self._healthy:
            with contextlib.suppress(*_REDIS_ERRORS):
                await pubsub.unsubscribe(scripts.channel(room))

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
        with _unavailable_on_error():
            return scripts.join_result(await self._join(keys=scripts.keys(room), args=args))

    async def leave(self, room: str, peer: str) -> None:
        with _unavailable_on_error():
            # Signals this peer sent before leaving go out before its `left`.
            await self._publisher.barrier()
            await self._leave(keys=scripts.keys(room), args=self._args.leave(room, peer))

    async def away(self, room: str, peer: str) -> None:
        with _unavailable_on_error():
            await self._away(keys=scripts.keys(room), args=self._args.away(peer))

    async def publish(self, room: str, envelope: str) -> None:
        if not self._healthy:
            raise BusUnavailable("bus not connected")
        # Encoded here rather than by redis-py in the publisher, so one message
        # that cannot be encoded fails alone, and its sender hears of it.
        try:
            message = envelope.encode()
        except UnicodeEncodeError:
            raise Errors.NOT_UNICODE.error() from None
        await self._publisher.put(scripts.channel(room).encode(), message)

    async def heartbeat(self, rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        items = list(rooms.items())
        with _unavailable_on_error():
            for start in range(0, len(items), HEARTBEAT_BATCH):
                async with self._commands.pipeline(transaction=False) as pipe:
                    for room, peers in items[start : start + HEARTBEAT_BATCH]:
                        args = self._args.heartbeat(room, peers, upsert)
                        await self._heartbeat(keys=scripts.keys(room), args=args, client=pipe)
                    await pipe.execute()

    async def members(self, room: str) -> dict[str, str | None]:
        with _unavailable_on_error():
            flat = await self._members(keys=scripts.keys(room), args=self._args.members(room))
        return scripts.members_result(flat)
