"""One contract, two buses here: the contract tests (tests/support/bus_contract.py)
run against the memory bus and the Redis bus (on fakeredis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection

from pea.bus import Bus
from pea.bus.memory import MemoryBroker, MemoryBus
from pea.bus.redis import RedisBus
from tests.support.bus_contract import *  # noqa: F403  (the contract's tests)
from tests.support.bus_contract import GRACE, LEASE, Node


@pytest.fixture(params=["memory", "redis"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[], Any]]:
    made: list[Node] = []
    broker = MemoryBroker()
    server = fakeredis.FakeServer()

    async def make() -> Node:
        name = f"node{len(made)}"
        bus: Bus
        if request.param == "memory":
            bus = MemoryBus(name, lease=LEASE, grace=GRACE, broker=broker)
        else:
            bus = RedisBus(
                "redis://fake",
                name,
                lease=LEASE,
                grace=GRACE,
                connection_class=FakeAsyncRedisConnection,
                server=server,
            )
        node = await Node(bus).start()
        made.append(node)
        return node

    yield make
    for node in made:
        await node.bus.close()
