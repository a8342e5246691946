"""Several real `pea` node processes on one real redis-server (and, for the tests
taking `bus_url` or `two_nodes`, on a real Redis Cluster too)."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections.abc import Mapping, Sequence

import pytest

from tests.support.client import Client, join_frame, new_room
from tests.support.procs import PeaNode, RedisServer, pea_node, wait_for_async

pytestmark = pytest.mark.cluster


async def test_peers_on_different_nodes_join_signal_and_leave(
    two_nodes: tuple[PeaNode, PeaNode],
) -> None:
    a, b = two_nodes
    room = new_room()
    ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await ann.join(room, name="Ann")
    welcome = await bob.join(room, name="Bob")
    assert welcome["peers"] == [{"peer": ann.id, "name": "Ann"}]
    assert await ann.recv() == {"type": "peer-joined", "peer": bob.id, "name": "Bob"}
    offer = {"type": "offer", "sdp": "v=0\r\n" + "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"}
    await bob.send({"type": "signal", "to": ann.id, "data": offer})
    assert await ann.recv() == {"type": "signal", "from": bob.id, "data": offer}
    await ann.send({"type": "signal", "to": bob.id, "data": {"answer": True}})
    assert (await bob.expect("signal"))["data"] == {"answer": True}
    await bob.send({"type": "leave"})
    assert await ann.recv() == {"type": "peer-left", "peer": bob.id}
    await ann.send({"type": "signal", "to": bob.id, "data": 1})
    assert (await ann.expect("error"))["code"] == "unknown-peer"


async def test_signals_keep_their_order_across_nodes(two_nodes: tuple[PeaNode, PeaNode]) -> None:
    a, b = two_nodes
    room = new_room()
    receiver = await Client.open(a.ws_url)
    await receiver.join(room)
    senders = [await Client.open(b.ws_url) for _ in range(3)]
    for sender in senders:
        await sender.join(room)
        await receiver.expect("peer-joined")
    count = 150

    async def send_all(sender: Client) -> None:
        for i in range(count):
            await sender.send({"type": "signal", "to": receiver.id, "data": i})

    await asyncio.gather(*(send_all(s) for s in senders))
    got: dict[str, list[int]] = {s.id or "": [] for s in senders}
    for _ in range(count * len(senders)):
        frame = await receiver.expect("signal")
        got[frame["from"]].append(frame["data"])
    assert all(seq == list(range(count)) for seq in got.values())


async def test_a_newcomers_first_signal_never_overtakes_its_peer_joined(
    two_nodes: tuple[PeaNode, PeaNode],
) -> None:
    """Two peers on one node: the newcomer's `peer-joined` goes round through Redis, and
    its first signal must not get there first (a sharer offering on both made two offers
    whose answers crossed). The signal is sent right behind the join, without waiting
    for the welcome: the node handles it the moment the join is done."""
    a, _ = two_nodes
    for _ in range(10):
        room = new_room()
        sharer, receiver = await Client.open(a.ws_url), await Client.open(a.ws_url)
        await sharer.join(room)
        await receiver.send(join_frame(room))
        await receiver.signal(sharer.id or "", "hello")
        newcomer = (await receiver.expect("welcome"))["peer"]
        assert await sharer.recv() == {"type": "peer-joined", "peer": newcomer, "name": None}
        assert await sharer.recv() == {"type": "signal", "from": newcomer, "data": "hello"}
        await receiver.quiet()  # and no late peer-joined of the sharer for the newcomer
        await sharer.close()
        await receiver.close()


async def test_room_limit_holds_across_nodes(bus_url: str) -> None:
    with (
        pea_node(bus_url, max_peers_per_room="4") as a,
        pea_node(bus_url, max_peers_per_room="4") as b,
    ):
        room = new_room()
        clients = [await Client.open((a if i % 2 else b).ws_url) for i in range(10)]
        await asyncio.gather(*(c.send({"type": "join", "room": room}) for c in clients))
        firsts = await asyncio.gather(*(c.recv() for c in clients))
        kinds = sorted(f["type"] if f["type"] != "error" else f["code"] for f in firsts)
        assert kinds == ["room-full"] * 6 + ["welcome"] * 4


async def test_resume_on_another_node_is_invisible_to_the_room(
    two_nodes: tuple[PeaNode, PeaNode],
) -> None:
    a, b = two_nodes
    room = new_room()
    ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await ann.join(room)
    await bob.join(room, name="Bob")
    await ann.expect("peer-joined")
    bob.abort()
    await asyncio.sleep(0.3)
    back = await Client.open(a.ws_url)
    welcome = await back.join(room, name="Bob", resume=bob.welcome["resume"])
    assert welcome["peer"] == bob.id
    assert [p["peer"] for p in welcome["peers"]] == [ann.id]
    await back.send({"type": "signal", "to": ann.id, "data": "resumed"})
    assert (await ann.expect("signal")) == {"type": "signal", "from": bob.id, "data": "resumed"}
    await ann.send({"type": "signal", "to": bob.id, "data": "welcome back"})
    assert (await back.expect("signal"))["data"] == "welcome back"
    await ann.quiet()


async def test_a_killed_nodes_peers_are_reported_left_unless_they_resumed(
    redis: RedisServer,
) -> None:
    with pea_node(redis.url) as a, pea_node(redis.url) as b:
        room = new_room()
        ann = await Client.open(a.ws_url)
        await ann.join(room)
        ghost, mover = await Client.open(b.ws_url), await Client.open(b.ws_url)
        await ghost.join(room)
        await mover.join(room)
        await ann.expect("peer-joined")
        await ann.expect("peer-joined")
        killed_at = time.monotonic()
        b.kill()  # SIGKILL: no goodbye, no drain
        moved = await Client.open(a.ws_url)
        assert (await moved.join(room, resume=mover.welcome["resume"]))["peer"] == mover.id
        left = await ann.expect("peer-left", timeout=35)
        elapsed = time.monotonic() - killed_at
        assert left["peer"] == ghost.id
        assert elapsed <= 30, f"ghost reported after {elapsed:.1f} s"
        await ann.quiet()  # and nothing about the peer that resumed
        await moved.send({"type": "signal", "to": ann.id, "data": "alive"})
        assert (await ann.expect("signal"))["data"] == "alive"


async def test_redis_restart_under_live_rooms(redis: RedisServer) -> None:
    with pea_node(redis.url) as a, pea_node(redis.url) as b:
        room = new_room()
        ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
        await ann.join(room)
        await bob.join(room)
        await ann.expect("peer-joined")

        redis.stop()
        await wait_for_async(lambda: not a.ready() and not b.ready(), 10, "nodes report not ready")
        newcomer = await Client.open(a.ws_url)
        await newcomer.send({"type": "join", "room": new_room()})
        assert (await newcomer.expect("error"))["code"] == "unavailable"
        await bob.send({"type": "signal", "to": ann.id, "data": "lost"})
        assert (await bob.expect("error"))["code"] == "unavailable"

        redis.start()  # empty: Redis forgot every room
        await wait_for_async(lambda: a.ready() and b.ready(), 20, "nodes ready again")
        await asyncio.sleep(1)  # membership is restored by the first heartbeat
        await bob.send({"type": "signal", "to": ann.id, "data": "back"})
        assert (await ann.expect("signal"))["data"] == "back"
        carol = await Client.open(b.ws_url)
        welcome = await carol.join(room)
        assert {p["peer"] for p in welcome["peers"]} == {ann.id, bob.id}
        assert (await ann.expect("peer-joined"))["peer"] == carol.id


async def test_a_hung_redis_is_noticed_and_survived(redis: RedisServer) -> None:
    with pea_node(redis.url) as a:
        room = new_room()
        ann = await Client.open(a.ws_url)
        await ann.join(room)
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)  # connections stay open, nothing answers
        try:
            noticed = await wait_for_async(lambda: not a.ready(), 15, "a silent Redis is noticed")
            assert noticed < 15
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        await wait_for_async(lambda: a.ready(), 20, "node recovers after Redis answers again")
        bob = await Client.open(a.ws_url)
        await bob.join(room)
        assert (await ann.expect("peer-joined"))["peer"] == bob.id


async def test_sigterm_drains_peers_to_other_nodes(redis: RedisServer) -> None:
    with pea_node(redis.url) as a, pea_node(redis.url, drain_timeout="5") as b:
        room = new_room()
        ann = await Client.open(a.ws_url)
        await ann.join(room)
        movers = [await Client.open(b.ws_url) for _ in range(5)]
        for mover in movers:
            await mover.join(room)
            await ann.expect("peer-joined")
        b.signal(signal.SIGTERM)
        for mover in movers:
            while (frame := await mover.recv())["type"] == "peer-joined":
                pass  # earlier movers saw the later ones arrive
            assert frame["type"] == "reconnect" and isinstance(frame["after_ms"], int)
        for mover in movers:
            await asyncio.wait_for(mover.ws.wait_closed(), 10)
            assert mover.ws.close_code == 1012
            back = await Client.open(a.ws_url)
            assert (await back.join(room, resume=mover.welcome["resume"]))["peer"] == mover.id
        assert b.wait(15) == 0
        await ann.quiet()  # nobody left, nobody joined


async def test_readiness_is_false_while_draining(redis: RedisServer) -> None:
    with pea_node(redis.url, drain_timeout="4") as b:
        # A peer that never answers the close handshake keeps the drain going.
        reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert b"101" in await asyncio.wait_for(reader.readline(), 5)
        b.signal(signal.SIGTERM)
        await wait_for_async(lambda: not b.ready(), 5, "readiness false during drain")
        assert b.wait(20) == 0
        writer.close()


async def test_redis_connections_per_node_stay_constant(redis: RedisServer) -> None:
    import redis.asyncio as aioredis

    def pea_clients(listing: Sequence[Mapping[str, object]]) -> dict[str, int]:
        roles: dict[str, int] = {}
        for client in listing:
            name = str(client.get("name", ""))
            if name.startswith("pea-"):
                role = name.rsplit("-", 1)[1]
                roles[role] = roles.get(role, 0) + 1
        return roles

    admin = aioredis.Redis.from_url(redis.url)
    try:
        # 100 connections per node from loopback: no per-client limit here.
        node = functools.partial(pea_node, redis.url, max_connections_per_client="0")
        with node() as a, node() as b:
            ann = await Client.open(a.ws_url)
            await ann.join(new_room())
            idle = pea_clients(await admin.client_list())
            clients = []
            for i in range(200):  # 100 rooms, each with one peer on each node
                c = await Client.open((a if i % 2 else b).ws_url)
                await c.join(f"room-{i // 2:04d}-xxxxxxxxxxxxxxx")
                clients.append(c)
            for i in range(0, 200, 2):
                await clients[i].expect("peer-joined")
                await clients[i].send({"type": "signal", "to": clients[i + 1].id, "data": i})
            for i in range(0, 200, 2):
                assert (await clients[i + 1].expect("signal"))["data"] == i
            busy = pea_clients(await admin.client_list())
            for c in clients:
                await c.close()
    finally:
        await admin.aclose()
    assert idle["subscribe"] == busy["subscribe"] == 2  # one subscriber per node
    assert idle.get("publish", 0) <= busy["publish"] <= 2  # opened on first use
    assert busy["scripts"] <= 2 * 8  # the bounded pool
