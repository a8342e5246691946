"""The Redis Cluster bus keeps a room's signals in the order sent while its slot moves
(docs/protocol.md, "Order and delivery"): a publish sent to the old shard comes back
redirected, and the room's later publishes must not overtake it on the new shard."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import AskError, MovedError

from pea.bus.cluster import RedisClusterBus
from pea.bus.shards import SLOTS, Addr, SlotMap, slot_of

SRC: Addr = ("127.0.0.1", 7000)
DST: Addr = ("127.0.0.1", 7001)
ROOM = "room-1"


class FakeLane:
    """A shard's command connection: it answers in order, when the test says."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bool, asyncio.Future[Any]]] = []
        self.backlog = 0

    def submit(self, args: tuple[Any, ...], asking: bool = False) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((args[2], asking, fut))
        return fut

    def messages(self) -> list[bytes]:
        return [m for m, _, _ in self.sent]

    def answer(self, result: Any = 1) -> None:
        """Every command not yet answered, in the order sent."""
        for _, _, fut in self.sent:
            if not fut.done():
                if isinstance(result, Exception):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)


def served_by(addr: Addr) -> SlotMap:
    """The room's slot on `addr`, every other slot on SRC (still a master)."""
    owners: list[Addr | None] = [SRC] * SLOTS
    owners[slot_of(ROOM)] = addr
    return SlotMap(tuple(owners))


def a_bus(lanes: dict[Addr, FakeLane]) -> RedisClusterBus:
    bus = RedisClusterBus("redis+cluster://127.0.0.1:7000", "n1", lease=10, grace=5)
    bus._map = served_by(SRC)
    bus._lane = lanes.__getitem__  # type: ignore[method-assign,assignment]
    bus._shard_up = lambda room: True  # type: ignore[method-assign]
    bus._request_refresh = lambda why: None  # type: ignore[method-assign]
    return bus


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_publishes_reach_the_new_shard_in_the_order_sent_when_the_slot_moves() -> None:
    lanes = {SRC: FakeLane(), DST: FakeLane()}
    bus = a_bus(lanes)
    moved = MovedError(f"{slot_of(ROOM)} {DST[0]}:{DST[1]}")
    await bus.publish(ROOM, "1")
    bus._map = served_by(DST)  # the slot map learned of the move while "1" was in flight
    await bus.publish(ROOM, "2")  # must not overtake "1", which comes back redirected
    lanes[SRC].answer(moved)
    await settle()
    await bus.publish(ROOM, "3")
    lanes[SRC].answer(moved)
    await settle()
    assert lanes[DST].messages() == [b"1", b"2", b"3"]
    lanes[DST].answer()
    await settle()
    await bus.publish(ROOM, "4")  # nothing in flight: straight to the room's shard
    assert lanes[DST].messages() == [b"1", b"2", b"3", b"4"]
    assert lanes[SRC].messages() == [b"1", b"2"]
    assert bus.publishes_dropped == 0


async def test_an_ask_redirect_leaves_the_next_publishes_where_they_went() -> None:
    lanes = {SRC: FakeLane(), DST: FakeLane()}
    bus = a_bus(lanes)
    await bus.publish(ROOM, "1")
    lanes[SRC].answer(AskError(f"{slot_of(ROOM)} {DST[0]}:{DST[1]}"))
    await settle()
    assert lanes[DST].sent[0][:2] == (b"1", True)  # sent with ASKING
    await bus.publish(ROOM, "2")  # the slot is still migrating: the source asks it again
    assert lanes[SRC].messages() == [b"1", b"2"]


async def test_a_failed_over_shard_is_not_waited_for() -> None:
    lanes = {SRC: FakeLane(), DST: FakeLane()}
    bus = a_bus(lanes)
    await bus.publish(ROOM, "1")  # in flight on a master that then dies
    bus._map = SlotMap((DST,) * SLOTS)  # its replica took over: SRC is no master any more
    await bus.publish(ROOM, "2")
    assert lanes[DST].messages() == [b"2"]
    lanes[SRC].answer(ConnectionError("gone"))
    await settle()
    assert bus.publishes_dropped == 1
