"""The Redis Cluster bus without Redis: its URL (seeds, credentials, TLS, what settings
refuse), the slot map and hash tag, and per-shard availability of publishes."""

from __future__ import annotations

import asyncio

import pytest

from pea.bus import BusUnavailable, make_bus
from pea.bus.cluster import MAX_BACKLOG, RedisClusterBus
from pea.bus.shards import SLOTS, ClusterURL, SlotMap, slot_of
from pea.config import load_settings


def test_seeds_password_and_tls_are_read() -> None:
    url = ClusterURL.parse(
        "rediss+cluster://pea:p%40ss@10.0.0.1:6379,[::1]:7000,redis-c:6380"
        "?ssl_ca_certs=/etc/ca.crt&ssl_check_hostname=false"
    )
    assert url.seeds == (("10.0.0.1", 6379), ("::1", 7000), ("redis-c", 6380))
    assert (url.username, url.password) == ("pea", "p@ss")
    assert (url.tls, url.ca_certs, url.check_hostname) == (True, "/etc/ca.crt", False)
    plain = ClusterURL.parse("redis+cluster://h:1")
    assert (plain.tls, plain.password, plain.seeds) == (False, None, (("h", 1),))


@pytest.mark.parametrize(
    "raw",
    [
        "redis+cluster://",
        "redis+cluster://host",
        "redis+cluster://host:0",
        "redis+cluster://host:99999",
        "redis+cluster://a:1,b",
        "redis+cluster://a:1?tls=yes",
        "redis+clusters://a:1",
    ],
)
def test_bad_cluster_urls_are_refused_at_start_up(raw: str) -> None:
    with pytest.raises(ValueError):
        load_settings(environ={"PEA_REDIS_URL": raw})


def test_the_url_picks_the_cluster_bus() -> None:
    bus = make_bus("redis+cluster://127.0.0.1:7000", "n", lease=1, grace=1)
    assert isinstance(bus, RedisClusterBus)
    assert load_settings(environ={"PEA_REDIS_URL": "redis+cluster://a:1,b:2"}).redis_url


def test_a_room_and_all_its_keys_share_one_slot() -> None:
    room = "room-cccccccccccccccccccc"
    from redis.crc import key_slot

    for key in (f"pea:{{{room}}}", f"pea:{{{room}}}:m", f"pea:{{{room}}}:d"):
        assert key_slot(key.encode()) == slot_of(room)


def test_slot_map_from_cluster_slots() -> None:
    reply = [
        [0, 8191, [b"10.0.0.1", 7000, b"id1"], [b"10.0.0.4", 7003, b"id4"]],
        [8192, 16383, [b"10.0.0.2", 7001, b"id2"]],
    ]
    m = SlotMap.parse(reply)
    assert m.complete and m.masters == {("10.0.0.1", 7000), ("10.0.0.2", 7001)}
    assert m.owner(0) == ("10.0.0.1", 7000) and m.owner(SLOTS - 1) == ("10.0.0.2", 7001)
    partial = SlotMap.parse(reply[:1])
    assert not partial.complete and partial.owner(9000) is None


class _Sub:
    def __init__(self, connected: bool) -> None:
        self.connected = connected


class _Lane:
    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.sent: list[tuple[object, ...]] = []

    def submit(self, args: tuple[object, ...], asking: bool = False) -> asyncio.Future[None]:
        self.sent.append(args)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _room_on(shard: int) -> str:
    """A room in the first half of the slots (shard 0) or the second (shard 1)."""
    rooms = (f"room-{i}" for i in range(10_000))
    return next(r for r in rooms if (slot_of(r) < SLOTS // 2) == (shard == 0))


async def test_a_room_s_signals_depend_on_its_own_shard_only() -> None:
    """One shard down (or backed up): its rooms' signals are refused with
    `unavailable`, the other shard's rooms keep going, memory stays bounded."""
    bus = RedisClusterBus("redis+cluster://127.0.0.1:1", "n", lease=1, grace=1)
    a, b = ("10.0.0.1", 1), ("10.0.0.2", 2)
    bus._map = SlotMap(tuple(a if s < SLOTS // 2 else b for s in range(SLOTS)))
    lanes = {a: _Lane(0), b: _Lane(0)}
    bus._lanes = lanes  # type: ignore[assignment]
    bus._subs = {a: _Sub(True), b: _Sub(False)}  # type: ignore[dict-item]
    up, down = _room_on(0), _room_on(1)
    assert not bus.healthy  # readiness: a shard is unreachable
    await bus.publish(up, "S p 0 {}")
    assert lanes[a].sent == [("SPUBLISH", f"pea:{{{up}}}".encode(), b"S p 0 {}")]
    with pytest.raises(BusUnavailable):
        await bus.publish(down, "S p 0 {}")
    lanes[a].backlog = MAX_BACKLOG
    with pytest.raises(BusUnavailable):
        await bus.publish(up, "S p 0 {}")
    assert len(lanes[a].sent) == 1 and not lanes[b].sent
