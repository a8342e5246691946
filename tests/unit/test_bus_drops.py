"""Publishes the bus accepted but lost are counted in /metrics, and the Redis bus
loads its Lua scripts as package resources."""

from __future__ import annotations

from typing import Any

import fakeredis
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.testclient import TestClient

from pea.app import create_app, create_metrics_app
from pea.bus.redis import RedisBus
from pea.bus.scripts import script
from pea.config import Settings


def test_publishes_lost_by_the_bus_are_counted_in_metrics() -> None:
    bus = RedisBus(
        "redis://fake",
        "n1",
        lease=6,
        grace=15,
        connection_class=fakeredis.FakeAsyncRedisConnection,
        server=fakeredis.FakeServer(),
    )
    settings = Settings(ice_servers=[], secret="s" * 32)
    with TestClient(create_app(settings, bus=bus)) as client:
        node = client.app.state.node  # type: ignore[attr-defined]
        scrape = TestClient(create_metrics_app(node))
        assert "pea_bus_publishes_dropped_total 0.0" in scrape.get("/metrics").text

        def broken_pipeline(*args: Any, **kwargs: Any) -> Any:
            raise RedisConnectionError("injected: Redis went away mid-publish")

        bus._publish_client.pipeline = broken_pipeline  # type: ignore[method-assign]
        client.portal.call(bus.publish, "room-aaaaaaaaaaaaaaaaaaaa", "L somebody")  # type: ignore[union-attr]
        client.portal.call(bus._publisher.barrier)  # type: ignore[union-attr]
        assert "pea_bus_publishes_dropped_total 1.0" in scrape.get("/metrics").text


def test_the_lua_scripts_are_package_resources() -> None:
    join = script("join")
    assert "local function reap" in join and "PUBLISH" in join
    assert "local function" not in script("leave")
