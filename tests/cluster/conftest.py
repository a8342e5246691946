"""Fixtures only: the harness is tests/support/procs.py, the client tests/support/client.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.client import Client
from tests.support.procs import (
    PeaNode,
    RedisCluster,
    RedisServer,
    pea_node,
    redis_cluster,
    redis_server,
)


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(params=["redis", "redis-cluster"])
def bus_url(request: pytest.FixtureRequest) -> str:
    """The protocol tests across nodes run on one Redis and on a Redis Cluster."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis")
        return server.url
    cluster: RedisCluster = request.getfixturevalue("rcluster")
    return cluster.url


@pytest.fixture
def two_nodes(bus_url: str) -> Iterator[tuple[PeaNode, PeaNode]]:
    with pea_node(bus_url) as a, pea_node(bus_url) as b:
        yield a, b


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Every protocol client a test leaves open is dropped after it (warnings are errors)."""
    yield
    await Client.close_all()


@pytest.fixture(scope="session")
def rcluster() -> Iterator[RedisCluster]:
    """One Redis Cluster (3 masters, 3 replicas) for the whole run: it takes seconds
    to form. Tests that break it (failover, restart) leave it healthy again."""
    with redis_cluster() as cluster:
        yield cluster
