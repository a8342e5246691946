from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.support.procs import PeaNode, RedisServer, pea_node, redis_server


def new_room() -> str:
    return secrets.token_urlsafe(16)


class Client:
    """A protocol client over a real WebSocket; every wait has a timeout."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.id: str | None = None
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def open(cls, url: str) -> Client:
        return cls(await websockets.connect(url, open_timeout=10, max_size=None))

    async def send(self, obj: Any) -> None:
        await self.ws.send(json.dumps(obj))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def expect(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def join(self, room: str, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "join", "room": room, **fields})
        self.welcome = await self.expect("welcome")
        self.id = self.welcome["peer"]
        return self.welcome

    async def quiet(self) -> None:
        await self.send({"type": "ping"})
        frame = await self.recv()
        assert frame == {"type": "pong"}, f"unexpected frame {frame}"

    def abort(self) -> None:
        """Lose the connection without a close frame, like a dropped network."""
        self.ws.transport.abort()

    async def close(self) -> None:
        await self.ws.close()


def ready(node: PeaNode) -> bool:
    try:
        with urllib.request.urlopen(node.url + "/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def wait_until(check: Any, within: float, what: str) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await asyncio.to_thread(check):
        if loop.time() - start > within:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)
    return loop.time() - start


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def two_nodes(redis: RedisServer) -> Iterator[tuple[PeaNode, PeaNode]]:
    with pea_node(redis.url) as a, pea_node(redis.url) as b:
        yield a, b
