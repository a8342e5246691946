"""The session/node split: subscriptions are dropped when a join fails, and a
frame that cannot be encoded costs only itself."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.testclient import TestClient

from pea.app import create_app
from pea.bus import BusUnavailable
from pea.bus.memory import MemoryBroker, MemoryBus
from pea.config import Settings
from pea.connection import Connection
from pea.metrics import Metrics
from tests.support.inproc import ROOM, peers_of


def test_a_join_the_bus_refuses_leaves_no_room_subscription_behind() -> None:
    broker = MemoryBroker()
    bus = MemoryBus("n1", lease=6, grace=15, broker=broker)
    fail = True
    real_join = bus.join

    async def join(*args: Any) -> Any:
        if fail:
            raise BusUnavailable("injected")
        return await real_join(*args)

    bus.join = join  # type: ignore[method-assign,assignment]
    settings = Settings(ice_servers=[], secret="s" * 32)
    with TestClient(create_app(settings, bus=bus)) as client, peers_of(client) as connect:
        ann = connect()
        ann.send({"type": "join", "room": ROOM})
        ann.expect_error("unavailable")
        assert ann.expect_close() == 1013
        assert ROOM not in broker.subscribers  # the subscription leaked before
        fail = False
        bob = connect()
        bob.join()
        assert list(broker.subscribers[ROOM]) == ["n1"]


class Socket:
    """A WebSocket that encodes what it sends, as a real one does."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.closed.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send_text(self, text: str) -> None:
        text.encode("utf-8")
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed.set()


class Quiet:
    async def handle(self, conn: Connection, text: str) -> None:
        raise AssertionError("no frames expected")

    async def disconnect(self, conn: Connection, departure: bool) -> None:
        pass


async def test_a_frame_that_cannot_be_encoded_is_dropped_and_the_rest_still_go_out() -> None:
    ws, metrics = Socket(), Metrics()
    conn = Connection(ws, Settings(ice_servers=[]), metrics)  # type: ignore[arg-type]
    task = asyncio.ensure_future(conn.run(Quiet()))
    await asyncio.sleep(0)
    conn.send('{"type":"signal","from":"a","data":"\ud800"}')
    conn.send('{"type":"pong"}')
    conn.close(1000)
    await asyncio.wait_for(task, 5)
    assert ws.sent == ['{"type":"pong"}']
    out = metrics.registry.get_sample_value("pea_frames_out_total", {"type": "unencodable"})
    assert out == 1.0


def test_live_delivery_and_the_join_replay_share_one_filter() -> None:
    from pea.bus import Envelope
    from pea.session import wanted

    joined = Envelope.parse(Envelope.joined("bob", '{"type":"peer-joined"}'))
    left = Envelope.parse(Envelope.left("bob"))
    to_me = Envelope.parse(Envelope.signal("me", 1, '{"type":"signal"}'))
    to_bob = Envelope.parse(Envelope.signal("bob", 1, '{"type":"signal"}'))
    mine = Envelope.parse(Envelope.joined("me", '{"type":"peer-joined"}'))
    # Live: news about anyone but me, signals for me.
    assert wanted(joined, "me") and wanted(left, "me") and wanted(to_me, "me")
    assert not wanted(to_bob, "me") and not wanted(mine, "me")
    # Replay after a welcome: what the welcome already said is not news.
    assert not wanted(joined, "me", {"bob"}) and wanted(joined, "me", set())
    assert wanted(left, "me", {"bob"}) and not wanted(left, "me", set())
    assert wanted(to_me, "me", set()) and not wanted(mine, "me", set())
