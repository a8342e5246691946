"""Every long-running task of a node survives an unexpected failure: it is logged
with its traceback, counted in /metrics, and restarted, so the work goes on; a
task that keeps failing turns /readyz to 503 with the reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection
from starlette.testclient import TestClient

import pea.tasks
from pea.app import create_metrics_app
from pea.bus import Envelope
from pea.bus.redis import RedisBus
from pea.metrics import Metrics
from pea.tasks import Supervisor
from tests.support.inproc import ROOM, peers_of


def failures(metrics: Metrics, task: str) -> float:
    value = metrics.registry.get_sample_value("pea_task_failures_total", {"task": task})
    return value or 0.0


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(0.02)


def wait_until(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        time.sleep(0.02)


class BusNode:
    """A Redis bus on fakeredis, supervised like a node's, with what it delivered."""

    def __init__(self, bus: RedisBus, metrics: Metrics) -> None:
        self.bus = bus
        self.metrics = metrics
        self.got: list[str] = []


@pytest.fixture
async def bus_nodes() -> AsyncIterator[Callable[[], Any]]:
    server = fakeredis.FakeServer()
    made: list[BusNode] = []

    async def make() -> BusNode:
        metrics = Metrics()
        bus = RedisBus(
            "redis://fake",
            f"node{len(made)}",
            lease=1,
            grace=1,
            connection_class=FakeAsyncRedisConnection,
            server=server,
        )
        node = BusNode(bus, metrics)

        async def resync() -> None:
            return None

        await bus.start(
            lambda room, env: node.got.append(env), resync, Supervisor(metrics.task_failures)
        )
        made.append(node)
        return node

    yield make
    for node in made:
        await node.bus.close()


async def test_a_publisher_failure_is_logged_counted_and_publishing_goes_on(
    bus_nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await bus_nodes(), await bus_nodes()
    await b.bus.subscribe(ROOM)
    publisher = a.bus._publisher
    send = publisher._send
    calls = 0

    async def fail_once(messages: list[tuple[bytes, bytes]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected publisher failure")
        await send(messages)

    publisher._send = fail_once
    await a.bus.publish(ROOM, Envelope.signal("p2", 0, '"lost"'))
    await eventually(lambda: failures(a.metrics, "bus-publisher") == 1)
    await a.bus.publish(ROOM, Envelope.signal("p2", 0, '"after"'))
    await eventually(lambda: any('"after"' in env for env in b.got))
    assert "injected publisher failure" in caplog.text and "Traceback" in caplog.text
    assert failures(a.metrics, "bus-listener") == 0


async def test_a_listener_failure_is_logged_counted_and_delivery_goes_on(
    bus_nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await bus_nodes(), await bus_nodes()
    await b.bus.subscribe(ROOM)
    pubsub = b.bus._pubsub
    get_message = pubsub.get_message

    async def fail(**kwargs: Any) -> Any:
        pubsub.get_message = get_message
        raise RuntimeError("injected listener failure")

    pubsub.get_message = fail
    await eventually(lambda: failures(b.metrics, "bus-listener") == 1)
    await eventually(lambda: b.bus.healthy)
    await a.bus.publish(ROOM, Envelope.signal("p2", 0, '"after"'))
    await eventually(lambda: any('"after"' in env for env in b.got))
    assert "injected listener failure" in caplog.text and "Traceback" in caplog.text


async def test_a_one_shot_task_failure_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    supervisor = Supervisor(metrics.task_failures)

    async def boom() -> None:
        raise RuntimeError("injected resync failure")

    task = supervisor.once("bus-resync", boom())
    await asyncio.wait([task])
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert failures(metrics, "bus-resync") == 1
    assert "injected resync failure" in caplog.text and "Traceback" in caplog.text
    assert supervisor.broken == {}


async def test_a_task_that_returns_is_restarted_and_one_that_keeps_failing_is_broken() -> None:
    metrics = Metrics()
    supervisor = Supervisor(
        metrics.task_failures, backoff=0.01, max_backoff=0.01, broken_after=3, healthy_after=0.3
    )
    runs = 0
    fail = True

    async def run() -> None:
        nonlocal runs
        runs += 1
        if fail:
            return  # a long-running loop never returns on its own
        await asyncio.sleep(3600)

    task = supervisor.start("loop", run)
    try:
        await eventually(lambda: "loop" in supervisor.broken)
        assert runs >= 3 and failures(metrics, "loop") >= 3
        fail = False
        await eventually(lambda: supervisor.broken == {})  # ran long enough again
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_heartbeat_failure_is_logged_counted_and_presence_goes_on(
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client(heartbeat_interval=0.1, resume_grace=0.2)
    node = client.app.state.node  # type: ignore[attr-defined]
    heartbeat = node.bus.heartbeat
    calls = 0

    async def fail_once(rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected heartbeat failure")
        await heartbeat(rooms, upsert)

    monkeypatch.setattr(node.bus, "heartbeat", fail_once)
    with peers_of(client) as connect:
        ann, bob = connect(), connect()
        ann.join()
        bob.join()
        ann.expect("peer-joined")
        wait_until(lambda: failures(node.metrics, "heartbeat") == 1)
        time.sleep(1.0)  # twice the presence deadline (3 x 0.1 s + 0.2 s)
        connect().join()  # a join reaps expired members: Bob must not be one
        assert ann.expect("peer-joined")
        ann.quiet()
        assert calls >= 3
    assert "injected heartbeat failure" in caplog.text and "Traceback" in caplog.text
    metrics = TestClient(create_metrics_app(node)).get("/metrics").text
    assert 'pea_task_failures_total{task="heartbeat"} 1.0' in metrics


def test_a_task_that_keeps_failing_turns_the_node_not_ready_until_it_recovers(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pea.tasks, "BACKOFF", 0.01)
    monkeypatch.setattr(pea.tasks, "MAX_BACKOFF", 0.02)
    monkeypatch.setattr(pea.tasks, "BROKEN_AFTER", 3)
    monkeypatch.setattr(pea.tasks, "HEALTHY_AFTER", 0.5)
    client = make_client(heartbeat_interval=0.1)
    node = client.app.state.node  # type: ignore[attr-defined]
    heartbeat = node.bus.heartbeat
    broken = True

    async def failing(rooms: dict[str, dict[str, str]], upsert: bool = False) -> None:
        if broken:
            raise RuntimeError("injected for good")
        await heartbeat(rooms, upsert)

    monkeypatch.setattr(node.bus, "heartbeat", failing)
    wait_until(lambda: client.get("/readyz").status_code == 503)
    body = client.get("/readyz").json()
    assert body["ready"] is False and body["bus"] == "connected"
    assert "heartbeat" in body["reason"] and "injected for good" in body["reason"]
    broken = False
    wait_until(lambda: client.get("/readyz").status_code == 200)
    assert "reason" not in client.get("/readyz").json()
