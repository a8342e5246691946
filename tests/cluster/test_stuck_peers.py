"""Peers that stop reading are reset within bounded time, reported left to their
room (on this node and across nodes) and forgotten by the node.

The stuck peer is a raw socket with a tiny receive buffer that never reads after
its welcome (tests/support/stuck_peer.py); another peer of its room floods it
with signals. Real `pea serve` processes, loopback only, every wait bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
from typing import Any

import pytest
import uvicorn
from starlette.websockets import WebSocket

from tests.support.client import Client, handshake_request, new_room
from tests.support.procs import PeaNode, RedisServer, free_port, pea_node, wait_for_async
from tests.support.stuck_peer import TCP_CLOSE, TCP_ESTABLISHED, StuckPeer

pytestmark = pytest.mark.cluster

SIGNAL_DATA = "x" * 30_000


class Watcher:
    """A well-behaved peer that reads everything it is sent, in the background."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.frames: list[dict[str, Any]] = []
        self._task = asyncio.ensure_future(self._read())

    @classmethod
    async def join(cls, node: PeaNode, room: str) -> Watcher:
        client = await Client.open(node.ws_url)
        await client.join(room)
        return cls(client)

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.client.ws:
                self.frames.append(json.loads(raw))

    def saw_left(self, peer: str | None) -> bool:
        return {"type": "peer-left", "peer": peer} in self.frames

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.client.close()


async def flood(
    client: Client, to: str, stop: asyncio.Event, frames: int = 10**9, pause: float = 0.02
) -> None:
    """Signals to `to`: by default about 1.5 MB/s, under the node's rate limit."""
    for _ in range(frames):
        if stop.is_set():
            return
        await client.send({"type": "signal", "to": to, "data": SIGNAL_DATA})
        await asyncio.sleep(pause)


async def stuck_in_room(node: PeaNode, room: str, watcher: Watcher) -> StuckPeer:
    stuck = await asyncio.to_thread(StuckPeer, node.port)
    peer = await asyncio.to_thread(stuck.join, room)
    await wait_for_async(
        lambda: any(f.get("peer") == peer for f in watcher.frames), 10, "peer-joined seen"
    )
    return stuck


async def drop_while_flooding(
    node: PeaNode,
    stuck: StuckPeer,
    flooder: Client,
    within: float,
    frames: int = 10**9,
    pause: float = 0.02,
) -> None:
    assert stuck.id is not None
    stop = asyncio.Event()
    task = asyncio.ensure_future(flood(flooder, stuck.id, stop, frames, pause))
    try:
        await wait_for_async(
            lambda: stuck.tcp_state() != TCP_ESTABLISHED, within, "stuck peer reset"
        )
    finally:
        stop.set()
        await task
    # Reset, not a polite close: a FIN could not even reach a peer whose window is shut.
    assert stuck.tcp_state() == TCP_CLOSE
    with pytest.raises(ConnectionResetError):
        while stuck.sock.recv(65536):
            pass


async def assert_forgotten(node: PeaNode, watchers: list[Watcher], stuck: StuckPeer) -> None:
    for w in watchers:
        await wait_for_async(lambda w=w: w.saw_left(stuck.id), 15, "peer-left for the stuck peer")  # type: ignore[misc]
    assert node.metric("pea_slow_consumers_dropped_total") >= 1
    await wait_for_async(
        lambda: node.metric("pea_connections") == 1, 10, "connection gauge back down"
    )


async def test_a_peer_over_its_send_queue_is_reset_and_reported_left() -> None:
    # send-timeout out of reach: only the queue limit (1 MiB) can drop it.
    with pea_node(resume_grace="1", send_timeout="3600") as node:
        room = new_room()
        ann = await Watcher.join(node, room)
        stuck = await stuck_in_room(node, room, ann)
        try:
            await drop_while_flooding(node, stuck, ann.client, within=30)
            await assert_forgotten(node, [ann], stuck)
        finally:
            stuck.close()
            await ann.stop()


async def test_a_peer_whose_writes_stall_is_reset_across_nodes(redis: RedisServer) -> None:
    # A huge queue limit: only --send-timeout can drop it. Its room spans two nodes.
    node = functools.partial(
        pea_node, redis.url, resume_grace="1", send_timeout="2", send_queue_bytes=str(1 << 30)
    )
    with node() as a, node() as b:
        room = new_room()
        ann = await Watcher.join(a, room)
        bob = await Watcher.join(b, room)
        stuck = await stuck_in_room(a, room, ann)
        try:
            await drop_while_flooding(a, stuck, ann.client, within=30)
            await assert_forgotten(a, [ann, bob], stuck)
            assert "nothing read for 2 s" in a.log_text()
        finally:
            stuck.close()
            await ann.stop()
            await bob.stop()


async def test_a_peer_that_misses_pongs_with_a_full_window_is_reset() -> None:
    # uvicorn's ping timeout closes the transport, and a close waits for the
    # unsent bytes to be read: without pea's reset the socket stayed open for good.
    with pea_node(
        resume_grace="1",
        ping_interval="3",
        ping_timeout="1",
        send_timeout="3600",
        send_queue_bytes=str(1 << 30),
    ) as node:
        room = new_room()
        ann = await Watcher.join(node, room)
        stuck = await stuck_in_room(node, room, ann)
        try:
            # One burst (~5 MB, within the rate limit's burst), far more than the
            # socket buffers hold, well before the first ping: the ping and then
            # uvicorn's close frame wait behind it, then nothing more is sent.
            await drop_while_flooding(node, stuck, ann.client, within=30, frames=150, pause=0)
            await assert_forgotten(node, [ann], stuck)
        finally:
            stuck.close()
            await ann.stop()


async def test_an_idle_peer_that_misses_pongs_is_closed() -> None:
    # Nothing unsent: uvicorn's own ping timeout closes it, pea reports it left.
    with pea_node(resume_grace="1", ping_interval="1", ping_timeout="1") as node:
        room = new_room()
        ann = await Watcher.join(node, room)
        stuck = await stuck_in_room(node, room, ann)
        try:
            await wait_for_async(
                lambda: stuck.tcp_state() != TCP_ESTABLISHED, 15, "idle peer closed"
            )
            await wait_for_async(lambda: ann.saw_left(stuck.id), 15, "peer-left for the idle peer")
            await wait_for_async(lambda: node.metric("pea_connections") == 1, 10, "gauge back down")
        finally:
            stuck.close()
            await ann.stop()


async def test_transport_reachable_under_uvicorn() -> None:
    """pea resets stuck peers through uvicorn's private transport; this fails
    loudly if a uvicorn or Starlette upgrade moves it."""
    from pea.connection import reset, transport_of

    found: list[object] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        ws = WebSocket(scope, receive, send)
        await ws.accept()
        transport = transport_of(ws)
        found.append(transport)
        if transport is not None:
            reset(transport)

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws="websockets-sansio",
            lifespan="off",
            log_config=None,
        )
    )
    task = asyncio.ensure_future(server.serve())
    try:
        await wait_for_async(lambda: server.started, 10, "uvicorn started")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(handshake_request("x", path="/"))
            await wait_for_async(lambda: bool(found), 10, "the app ran")
            assert found[0] is not None, "uvicorn's transport moved"

            def was_reset() -> bool:
                try:
                    while sock.recv(4096):
                        pass
                except ConnectionResetError:
                    return True
                return False

            assert await asyncio.to_thread(was_reset), "reset() did not reset the connection"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_memory_comes_back_after_a_thousand_stuck_peers() -> None:
    """1 000 peers join, stop reading and are flooded (100 at a time). Each used to
    hold about 1 MiB of the node for good (the 1 MiB send queue, a full transport
    buffer, its tasks): ~1 GiB. Now each is reset and its memory freed; what stays
    is the allocator keeping about one wave's worth of freed memory (30-60 MiB)."""
    from bench.stuck_peers import measure, stuck_node

    with stuck_node() as node:
        result = await measure(node, count=1000, wave=100, frames=24, within=30)
    print(result)
    assert result.reset == 1000
    assert result.rss_after_mib - result.rss_before_mib < 100, result


async def test_a_stuck_peer_whose_frames_all_fit_in_the_kernel_is_dropped() -> None:
    # Less than the kernel's socket buffers take: pea itself holds nothing for
    # it, and pings are far off. The kernel gives up --send-timeout + 10 s after
    # the window shut (TCP_USER_TIMEOUT); before, the peer stayed for good.
    with pea_node(resume_grace="1", ping_interval="3600", send_timeout="1") as node:
        room = new_room()
        ann = await Watcher.join(node, room)
        stuck = await stuck_in_room(node, room, ann)
        try:
            assert stuck.id is not None
            await flood(ann.client, stuck.id, asyncio.Event(), frames=10, pause=0)
            await wait_for_async(lambda: ann.saw_left(stuck.id), 30, "peer-left for the stuck peer")
            await wait_for_async(lambda: node.metric("pea_connections") == 1, 10, "gauge back down")
        finally:
            stuck.close()
            await ann.stop()
