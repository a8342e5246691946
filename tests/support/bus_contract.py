"""The bus contract as tests: every bus runs them (memory and Redis on fakeredis in
tests/unit, Redis Cluster on a real cluster in tests/cluster). A test module
imports them and provides a `nodes` fixture: an async factory of started `Node`s,
two of which stand for two pea nodes sharing one backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from pea.bus import Bus, Envelope, member_info
from pea.protocol import ProtocolError

ROOM = "room-cccccccccccccccccccc"
LEASE = 0.3
GRACE = 0.3


class Node:
    """A bus plus the envelopes it delivered."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.got: list[tuple[str, str]] = []

    async def start(self) -> Node:
        async def resync() -> None:
            return None

        await self.bus.start(lambda room, env: self.got.append((room, env)), resync)
        return self

    def kinds(self) -> list[str]:
        return [env.split(" ", 2)[0] + " " + env.split(" ", 2)[1] for _, env in self.got]


async def settle(seconds: float = 0.1) -> None:
    await asyncio.sleep(seconds)


async def eventually(check: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {within} s"
        await asyncio.sleep(0.02)


def info(name: str | None = None) -> str:
    return member_info(name, "n")


async def test_join_reports_members_and_publishes_joined(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await a.bus.subscribe(ROOM)
    await b.bus.subscribe(ROOM)
    first = await a.bus.join(ROOM, "p1", info("Ann"), 16, None, "F1")
    second = await b.bus.join(ROOM, "p2", info(None), 16, None, "F2")
    assert (first.status, first.members) == ("joined", {})
    assert (second.status, second.members) == ("joined", {"p1": "Ann"})
    await eventually(lambda: "J p2" in a.kinds() and "J p2" in b.kinds())
    assert (ROOM, Envelope.joined("p2", "F2")) in a.got


async def test_room_limit_holds_across_nodes(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    results = await asyncio.gather(
        *[(a if i % 2 else b).bus.join(ROOM, f"p{i}", info(), 3, None, "F") for i in range(8)]
    )
    assert sorted(r.status for r in results) == ["full"] * 5 + ["joined"] * 3
    assert len(await a.bus.members(ROOM)) == 3


async def test_leave_publishes_left_exactly_once(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await b.bus.subscribe(ROOM)
    await a.bus.join(ROOM, "p1", info(), 16, None, "F")
    await a.bus.leave(ROOM, "p1")
    await a.bus.leave(ROOM, "p1")
    await settle()
    assert b.kinds().count("L p1") == 1
    assert await b.bus.members(ROOM) == {}


async def test_resume_keeps_the_peer_and_publishes_takeover_not_joined(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await a.bus.subscribe(ROOM)
    await a.bus.join(ROOM, "p1", info("Ann"), 16, None, "F1")
    await a.bus.join(ROOM, "p2", info(), 16, None, "F2")
    await a.bus.away(ROOM, "p1")
    resumed = await b.bus.join(ROOM, "fresh", info("Ann"), 16, "p1", "F3")
    assert (resumed.status, resumed.peer) == ("resumed", "p1")
    assert resumed.members == {"p2": None}
    await settle()
    assert "T p1" in a.kinds()
    assert "J fresh" not in a.kinds() and "J p1" not in a.kinds()[1:]


async def test_a_lost_peer_is_reported_left_after_the_grace_period(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await b.bus.subscribe(ROOM)
    await a.bus.join(ROOM, "p1", info(), 16, None, "F")
    await b.bus.join(ROOM, "p2", info(), 16, None, "F")
    await a.bus.away(ROOM, "p1")
    await b.bus.heartbeat({ROOM: {"p2": info()}})
    await settle(0.05)
    assert "L p1" not in b.kinds(), "reported left inside the grace period"
    await asyncio.sleep(GRACE + 0.1)
    await b.bus.heartbeat({ROOM: {"p2": info()}})
    await eventually(lambda: "L p1" in b.kinds())
    assert b.kinds().count("L p1") == 1


async def test_resume_after_the_grace_period_is_a_new_peer(nodes: Any) -> None:
    a = await nodes()
    await a.bus.join(ROOM, "p1", info(), 16, None, "F")
    await a.bus.away(ROOM, "p1")
    await asyncio.sleep(GRACE + 0.1)
    late = await a.bus.join(ROOM, "p9", info(), 16, "p1", "F")
    assert (late.status, late.peer) == ("joined", "p9")
    assert "p1" not in late.members


async def test_peers_of_a_node_that_stops_heartbeating_expire(nodes: Any) -> None:
    dead, alive = await nodes(), await nodes()
    await alive.bus.subscribe(ROOM)
    await dead.bus.join(ROOM, "ghost", info(), 16, None, "F")
    await alive.bus.join(ROOM, "p2", info(), 16, None, "F")
    start = time.monotonic()
    while "L ghost" not in alive.kinds():
        assert time.monotonic() - start < 3, "ghost never reported left"
        await alive.bus.heartbeat({ROOM: {"p2": info()}})
        await asyncio.sleep(0.05)
    assert time.monotonic() - start >= LEASE + GRACE - 0.05


async def test_heartbeat_keeps_live_peers_and_does_not_resurrect_departed_ones(
    nodes: Any,
) -> None:
    a = await nodes()
    await a.bus.join(ROOM, "p1", info(), 16, None, "F")
    await a.bus.join(ROOM, "p2", info(), 16, None, "F")
    await a.bus.leave(ROOM, "p2")
    for _ in range(4):
        await a.bus.heartbeat({ROOM: {"p1": info(), "p2": info()}})
        await asyncio.sleep(LEASE / 2)
    assert set(await a.bus.members(ROOM)) == {"p1"}
    await a.bus.heartbeat({ROOM: {"p1": info(), "p2": info()}}, upsert=True)
    assert set(await a.bus.members(ROOM)) == {"p1", "p2"}


async def test_messages_keep_their_order_and_stop_after_unsubscribe(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await b.bus.subscribe(ROOM)
    for i in range(300):
        await a.bus.publish(ROOM, Envelope.signal("p2", i, f"F{i}"))
    await eventually(lambda: len(b.got) == 300)
    assert [Envelope.parse(env).rest for _, env in b.got] == [f"F{i}" for i in range(300)]
    await b.bus.unsubscribe(ROOM)
    await settle()
    await a.bus.publish(ROOM, Envelope.signal("p2", 0, "late"))
    await settle()
    assert len(b.got) == 300


async def test_an_unencodable_message_fails_alone(nodes: Any) -> None:
    a, b = await nodes(), await nodes()
    await b.bus.subscribe(ROOM)
    with pytest.raises(ProtocolError) as info:
        await a.bus.publish(ROOM, Envelope.signal("p2", 0, '"\ud800"'))
    assert info.value.code == "bad-message"
    await a.bus.publish(ROOM, Envelope.signal("p2", 0, '"after"'))
    await eventually(lambda: len(b.got) == 1)
    assert Envelope.parse(b.got[0][1]).rest == '"after"'
