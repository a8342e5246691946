"""Real `pea` nodes on a real Redis Cluster (3 masters, 3 replicas on loopback):
connections per shard, a master killed mid-conversation, a slot migrated live,
the whole cluster restarted. The session's cluster is left healthy after each."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from pea.bus.shards import SlotMap, slot_of
from tests.support.client import Client, new_room
from tests.support.procs import LOOPBACK, PeaNode, RedisCluster, pea_node, wait_for, wait_for_async

pytestmark = pytest.mark.cluster


def slot_map(cluster: RedisCluster) -> SlotMap:
    port = next(s.port for s in cluster.servers if s.running)
    with redis.Redis(LOOPBACK, port) as admin:
        return SlotMap.parse(admin.execute_command("CLUSTER", "SLOTS"))


def room_on(cluster: RedisCluster, port: int) -> str:
    """A fresh room whose slot the master on `port` serves."""
    owners = slot_map(cluster)
    for _ in range(10_000):
        room = new_room()
        owner = owners.owner(slot_of(room))
        if owner is not None and owner[1] == port:
            return room
    raise AssertionError(f"no room found on {port}")


def serving(cluster: RedisCluster) -> bool:
    """Every slot is served again (by whoever is alive)."""
    for s in cluster.servers:
        if s.running and "cluster_state:ok" not in cluster.cli(s.port, "cluster", "info"):
            return False
    return slot_map(cluster).complete


def subscribers(cluster: RedisCluster, port: int, room: str) -> int:
    with redis.Redis(LOOPBACK, port) as admin:
        reply = admin.execute_command("PUBSUB", "SHARDNUMSUB", f"pea:{{{room}}}")
    return int(reply[1])


@pytest.fixture
def nodes(rcluster: RedisCluster) -> Iterator[tuple[PeaNode, PeaNode]]:
    with pea_node(rcluster.url) as a, pea_node(rcluster.url) as b:
        yield a, b


@contextlib.asynccontextmanager
async def numbered_signals(sender: Client, to: str, tag: str) -> AsyncIterator[list[int]]:
    """Keeps `sender` signalling `to` with {tag, n} every 20 ms; yields the ns sent."""
    sent: list[int] = []

    async def run() -> None:
        for n in itertools.count():
            await sender.send({"type": "signal", "to": to, "data": {"tag": tag, "n": n}})
            sent.append(n)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(run())
    try:
        yield sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def received(client: Client, until_tag: str) -> list[dict[str, Any]]:
    """Every signal's data up to (and without) the one tagged `until_tag`."""
    got: list[dict[str, Any]] = []
    while True:
        data = (await client.expect("signal", timeout=15))["data"]
        if data.get("tag") == until_tag:
            return got
        got.append(data)


async def test_connections_per_shard_stay_two_per_node_whatever_the_rooms(
    rcluster: RedisCluster,
) -> None:
    with (
        pea_node(rcluster.url, max_connections_per_client="0") as a,
        pea_node(rcluster.url, max_connections_per_client="0") as b,
    ):
        clients: list[Client] = []
        rooms = [new_room() for _ in range(30)]
        for room in rooms:  # each room: one peer on each node
            for node in (a, b):
                c = await Client.open(node.ws_url)
                await c.join(room)
                clients.append(c)
        for i in range(0, len(clients), 2):
            await clients[i].expect("peer-joined")
            await clients[i + 1].send({"type": "signal", "to": clients[i].id, "data": i})
            assert (await clients[i].expect("signal"))["data"] == i
        masters = rcluster.master_ports()
        shards = slot_map(rcluster)
        assert {shards.owner(slot_of(r)) for r in rooms} == {(LOOPBACK, p) for p in masters}
        for port in masters:
            with redis.Redis(LOOPBACK, port) as admin:
                names = [str(c.get("name", "")) for c in admin.client_list()]
            per_node: dict[str, list[str]] = {}
            for name in names:
                if name.startswith("pea-"):
                    owner, role = name.rsplit("-", 1)
                    per_node.setdefault(owner, []).append(role)
            assert len(per_node) == 2, per_node
            for roles in per_node.values():
                assert sorted(roles) == ["cmd", "sub"], f"{port}: {per_node}"


async def test_a_killed_master_s_rooms_keep_their_members_and_signals(
    rcluster: RedisCluster, nodes: tuple[PeaNode, PeaNode]
) -> None:
    a, b = nodes
    victim, spared = rcluster.master_ports()[:2]
    room, other = room_on(rcluster, victim), room_on(rcluster, spared)
    ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
    cat, dan = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await ann.join(room)
    await bob.join(room)
    await cat.join(other)
    await dan.join(other)
    await ann.expect("peer-joined")
    await cat.expect("peer-joined")
    assert ann.id and cat.id
    async with (
        numbered_signals(bob, ann.id, room) as to_ann,
        numbered_signals(dan, cat.id, other),
    ):
        await wait_for_async(lambda: len(to_ann) > 10, 10, "a conversation going")
        rcluster.server(victim).kill()
        await wait_for_async(lambda: not a.ready(), 10, "readiness to fall with the shard")
        await asyncio.to_thread(wait_for, lambda: serving(rcluster), 30, "a replica promoted")
        await wait_for_async(lambda: a.ready() and b.ready(), 20, "nodes ready again")
        sent_after = len(to_ann)
        await wait_for_async(lambda: len(to_ann) > sent_after + 10, 10, "signals after failover")
    await bob.send({"type": "signal", "to": ann.id, "data": {"tag": "end"}})
    await dan.send({"type": "signal", "to": cat.id, "data": {"tag": "end"}})
    for client, tag in ((ann, room), (cat, other)):
        got = await received(client, "end")
        assert {d["tag"] for d in got} == {tag}, "a signal reached the wrong room"
        ns = [d["n"] for d in got]
        assert ns == sorted(set(ns)), "a signal arrived twice or out of order"
        assert ns[-1] >= sent_after, "no signal got through after the failover"
    carol = await Client.open(a.ws_url)
    welcome = await carol.join(room)
    assert {p["peer"] for p in welcome["peers"]} == {ann.id, bob.id}
    rcluster.server(victim).start()  # back as a replica
    await asyncio.to_thread(wait_for, rcluster.healthy, 30, "the cluster whole again")


async def test_a_slot_migrated_live_moves_its_rooms(
    rcluster: RedisCluster, nodes: tuple[PeaNode, PeaNode]
) -> None:
    a, b = nodes
    src, dst = rcluster.master_ports()[:2]
    room = room_on(rcluster, src)
    ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await ann.join(room)
    await bob.join(room)
    await ann.expect("peer-joined")
    assert ann.id and bob.id
    ids = {int(n["addr"].rsplit(":", 1)[1]): n["id"] for n in rcluster.nodes()}
    slot = str(slot_of(room))
    async with numbered_signals(bob, ann.id, room) as to_ann:
        await wait_for_async(lambda: len(to_ann) > 10, 10, "a conversation going")
        rcluster.cli(dst, "cluster", "setslot", slot, "importing", ids[src])
        rcluster.cli(src, "cluster", "setslot", slot, "migrating", ids[dst])
        keys = rcluster.cli(src, "cluster", "getkeysinslot", slot, "100").split()
        assert len(keys) == 2, keys
        rcluster.cli(src, "migrate", LOOPBACK, str(dst), "", "0", "5000", "keys", *keys)
        for port in rcluster.master_ports():
            rcluster.cli(port, "cluster", "setslot", slot, "node", ids[dst])
        try:
            await wait_for_async(
                lambda: subscribers(rcluster, dst, room) == 2, 20, "both nodes subscribed on dst"
            )
        except TimeoutError:
            raise AssertionError(a.log_text()[-3000:] + b.log_text()[-3000:]) from None
        assert subscribers(rcluster, src, room) == 0
        moved_at = len(to_ann)
        await wait_for_async(lambda: len(to_ann) > moved_at + 10, 10, "signals after the move")
    await bob.send({"type": "signal", "to": ann.id, "data": {"tag": "end"}})
    ns = [d["n"] for d in await received(ann, "end")]
    assert ns == sorted(set(ns)), "a signal arrived twice or out of order"
    assert ns[-1] >= moved_at
    await ann.send({"type": "signal", "to": bob.id, "data": "back"})
    assert (await bob.wait_for("signal"))["data"] == "back"
    carol = await Client.open(b.ws_url)
    assert {p["peer"] for p in (await carol.join(room))["peers"]} == {ann.id, bob.id}


async def test_the_whole_cluster_restarted_under_live_rooms(
    rcluster: RedisCluster, nodes: tuple[PeaNode, PeaNode]
) -> None:
    a, b = nodes
    rooms = [room_on(rcluster, port) for port in rcluster.master_ports()]
    pairs = []
    for room in rooms:
        ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
        await ann.join(room)
        await bob.join(room)
        await ann.expect("peer-joined")
        pairs.append((room, ann, bob))
    await asyncio.to_thread(rcluster.restart)  # every node down, then up, empty
    await wait_for_async(lambda: a.ready() and b.ready(), 30, "nodes ready again")
    await asyncio.sleep(1)  # membership is restored by the resync's heartbeat
    for room, ann, bob in pairs:
        assert ann.id and bob.id
        await bob.send({"type": "signal", "to": ann.id, "data": "back"})
        assert (await ann.wait_for("signal"))["data"] == "back"
        carol = await Client.open(a.ws_url)
        assert {p["peer"] for p in (await carol.join(room))["peers"]} == {ann.id, bob.id}
        assert (await ann.expect("peer-joined"))["peer"] == carol.id
