"""A display name holding a lone surrogate, against a node on either bus: the join
is refused with `bad-message`, the room stays open to everybody else, and the node
keeps no subscription for the refused join."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import fakeredis
import pytest
from fakeredis.aioredis import FakeAsyncRedisConnection
from starlette.testclient import TestClient

from pea.app import create_app
from pea.bus import Bus
from pea.bus.memory import MemoryBroker, MemoryBus
from pea.bus.redis import RedisBus
from pea.config import Settings
from tests.support.inproc import ROOM, peers_of

HOSTILE_JOINS = [
    '{"type":"join","room":"' + ROOM + r'","name":"Ann\ud800"}',
    '{"type":"join","room":"' + ROOM + r'","name":"\udfff"}',
    '{"type":"join","room":"' + ROOM + r'","resume":"\ud800","name":"Ann"}',
]


@pytest.fixture(params=["memory", "redis"])
def node_on(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, Callable[[], int]]]:
    """A node on the memory bus or on the Redis bus (fakeredis), and a count of
    the subscriptions to ROOM's channel the bus holds."""
    bus: Bus
    subscriptions: Callable[[], int]
    if request.param == "memory":
        broker = MemoryBroker()
        bus = MemoryBus("n1", lease=6, grace=15, broker=broker)

        def subscriptions() -> int:
            return len(broker.subscribers.get(ROOM, {}))
    else:
        server = fakeredis.FakeServer()
        bus = RedisBus(
            "redis://fake",
            "n1",
            lease=6,
            grace=15,
            connection_class=FakeAsyncRedisConnection,
            server=server,
        )
        admin = fakeredis.FakeRedis(server=server)

        def subscriptions() -> int:
            return int(admin.pubsub_numsub(f"pea:{{{ROOM}}}")[0][1])

    settings = Settings(ice_servers=[], secret="s" * 32)
    with TestClient(create_app(settings, bus=bus)) as client:
        yield client, subscriptions


@pytest.mark.parametrize("frame", HOSTILE_JOINS)
def test_a_lone_surrogate_in_a_join_is_refused_and_blocks_nothing(
    node_on: tuple[TestClient, Callable[[], int]], frame: str
) -> None:
    client, subscriptions = node_on
    with peers_of(client) as connect:
        eve = connect()
        eve.send(frame)
        eve.expect_error("bad-message")
        eve.quiet()
        assert subscriptions() == 0, "the refused join left a subscription behind"
        ann, bob = connect(), connect()
        assert ann.join(name="Ann")["peers"] == []
        assert bob.join(name="Bob")["peers"] == [{"peer": ann.id, "name": "Ann"}]
        assert ann.expect("peer-joined") == {"type": "peer-joined", "peer": bob.id, "name": "Bob"}
        bob.send({"type": "signal", "to": ann.id, "data": "hello"})
        assert ann.expect("signal")["data"] == "hello"
        # the refused connection can still join properly
        assert len(eve.join(name="Eve")["peers"]) == 2
        for peer in (ann, bob):
            peer.send({"type": "leave"})
            assert eve.expect("peer-left")["peer"] == peer.id
        eve.send({"type": "leave"})
        eve.quiet()
        assert subscriptions() == 0
