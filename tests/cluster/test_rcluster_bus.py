"""The bus contract on a real Redis Cluster (3 masters, 3 replicas on loopback),
two bus objects standing for two pea nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from pea.bus.cluster import RedisClusterBus
from tests.support.bus_contract import *  # noqa: F403  (the contract's tests)
from tests.support.bus_contract import GRACE, LEASE, Node
from tests.support.procs import RedisCluster


@pytest.fixture
async def nodes(rcluster: RedisCluster) -> AsyncIterator[Callable[[], Any]]:
    for port in rcluster.master_ports():
        rcluster.cli(port, "flushall")
    made: list[Node] = []

    async def make() -> Node:
        bus = RedisClusterBus(rcluster.url, f"node{len(made)}", lease=LEASE, grace=GRACE)
        node = await Node(bus).start()
        assert bus.healthy, "the bus did not connect to the cluster"
        made.append(node)
        return node

    yield make
    for node in made:
        await node.bus.close()
