"""Redis Cluster plumbing for the cluster bus: the seed URL, the slot map, and one
auto-pipelined command connection ("lane") per shard.

A lane sends everything queued for its shard (scripts, `SPUBLISH`, topology
queries) over one connection, batching whatever accumulated while the previous
batch was in flight, in queue order. Because a room lives on one shard, one lane
carries all of a room's commands in the order they were issued: a peer's signals
go out before its `leave` without any barrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisError

log = logging.getLogger("pea.bus")

SLOTS = 16384
Addr = tuple[str, int]

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
SCHEMES = ("redis+cluster", "rediss+cluster")


@dataclass(frozen=True)
class ClusterURL:
    """`redis+cluster://[user:password@]host:port[,host:port...][?ssl_ca_certs=/path]`,
    or `rediss+cluster://` for TLS. Any listed node will do as a seed: the rest of
    the cluster is learned from it."""

    seeds: tuple[Addr, ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_certs: str | None = None
    check_hostname: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> ClusterURL:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in SCHEMES:
            raise ValueError(f"not a {' or '.join(s + '://' for s in SCHEMES)} URL")
        rest, _, query = rest.partition("?")
        rest = rest.split("/", 1)[0]  # a database number means nothing to a cluster
        userinfo, at, hosts = rest.rpartition("@")
        username = password = None
        if at:
            user, colon, pw = userinfo.partition(":")
            username = unquote(user) or None
            password = unquote(pw) if colon else None
        seeds: list[Addr] = []
        for item in hosts.split(","):
            host, colon, port = item.strip().rpartition(":")
            if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"seed {item!r} is not host:port")
            seeds.append((host.strip("[]"), int(port)))
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        unknown = set(params) - {"ssl_ca_certs", "ssl_check_hostname"}
        if unknown:
            raise ValueError(f"unknown URL parameters: {', '.join(sorted(unknown))}")
        return cls(
            tuple(seeds),
            username,
            password,
            tls=scheme == "rediss+cluster",
            ca_certs=params.get("ssl_ca_certs"),
            check_hostname=params.get("ssl_check_hostname", "true").lower() != "false",
        )

    def connection_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.tls:
            kwargs |= {
                "connection_class": aioredis.SSLConnection,
                "ssl_cert_reqs": ssl.CERT_REQUIRED,
                "ssl_ca_certs": self.ca_certs,
                "ssl_check_hostname": self.check_hostname,
            }
        return kwargs


def slot_of(room: str) -> int:
    # The room is the hash tag of all its keys and its channel.
    return int(key_slot(room.encode()))


@dataclass(frozen=True)
class SlotMap:
    """Which master serves each slot (None: no one, the slot is not served)."""

    owners: tuple[Addr | None, ...]

    @classmethod
    def parse(cls, reply: Sequence[Any]) -> SlotMap:
        """From a CLUSTER SLOTS reply: [start, end, [host, port, id, ...], replicas...]."""
        owners: list[Addr | None] = [None] * SLOTS
        for entry in reply:
            start, end, master = int(entry[0]), int(entry[1]), entry[2]
            host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
            addr = (host, int(master[1]))
            for slot in range(start, min(end, SLOTS - 1) + 1):
                owners[slot] = addr
        return cls(tuple(owners))

    @functools.cached_property
    def masters(self) -> frozenset[Addr]:
        return frozenset(a for a in self.owners if a is not None)

    @functools.cached_property
    def complete(self) -> bool:
        return all(a is not None for a in self.owners)

    def owner(self, slot: int) -> Addr | None:
        return self.owners[slot]


class Lane:
    """One command connection to one Redis node, auto-pipelined."""

    def __init__(
        self,
        addr: Addr,
        client_name: str,
        timeout: float,
        max_batch: int = 1024,
        **connection_kwargs: Any,
    ) -> None:
        self.addr = addr
        self._timeout = timeout
        self._max_batch = max_batch
        self._client = aioredis.Redis(
            connection_pool=aioredis.ConnectionPool(
                host=addr[0],
                port=addr[1],
                max_connections=1,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                client_name=client_name,
                health_check_interval=0,
                **{k: v for k, v in connection_kwargs.items() if v is not None},
            )
        )
        self._queue: asyncio.Queue[tuple[tuple[Any, ...], bool, asyncio.Future[Any]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None

    def submit(self, args: tuple[Any, ...], asking: bool = False) -> asyncio.Future[Any]:
        """Queue a command; the future gets its reply or its error (a `ResponseError`
        such as MOVED is set as the exception, never raised here)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((args, asking, fut))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return fut

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def call(self, *args: Any) -> Any:
        return await asyncio.wait_for(self.submit(args), self._timeout * 2)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for args, asking, _ in batch:
                        if asking:
                            pipe.execute_command("ASKING")
                        pipe.execute_command(*args)
                    replies = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                for *_, fut in batch:
                    fut.cancel()
                raise
            except Exception as exc:
                # The connection failed under the batch: every command of it fails,
                # and the next batch reconnects.
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            it = iter(replies)
            for _, asking, fut in batch:
                if asking:
                    next(it)
                reply = next(it)
                if fut.done():
                    continue
                if isinstance(reply, Exception):
                    fut.set_exception(reply)
                else:
                    fut.set_result(reply)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await self._task
        with contextlib.suppress(*REDIS_ERRORS):
            await self._client.aclose()
            await self._client.connection_pool.disconnect()
