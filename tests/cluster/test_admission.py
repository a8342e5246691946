"""Admission and HTTP limits against a real `pea serve` process, over raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.error
import urllib.request

import psutil
import pytest
import websockets

from tests.support.client import Client, handshake_request, new_room
from tests.support.procs import PeaNode, http_status, pea_node

pytestmark = pytest.mark.cluster

MiB = 1 << 20


def handshake(host: str, origin: str) -> bytes:
    return handshake_request(host, extra=f"Origin: {origin}\r\n")


def status_of(port: int, request: bytes, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return s.recv(64).split(b"\r\n")[0]


def read_until_closed(s: socket.socket, within: float) -> bytes:
    """What the node sends until it closes the socket; fails if it stays open."""
    s.settimeout(within)
    data = b""
    while True:
        try:
            chunk = s.recv(4096)  # socket.timeout (a test failure) if the node holds on
        except ConnectionResetError:
            return data  # closed with our bytes unread: a reset
        if not chunk:
            return data
        data += chunk


def node_serves_others(node: PeaNode) -> None:
    with urllib.request.urlopen(node.url + "/readyz", timeout=5) as resp:
        assert resp.status == 200


def test_a_dns_rebinding_page_cannot_open_a_websocket() -> None:
    with pea_node(public_url="https://pea.example") as node:
        evil = f"evil.test:{node.port}"
        refused = status_of(node.port, handshake(evil, f"http://{evil}"))
        assert refused.startswith(b"HTTP/1.1 403"), refused
        own = f"127.0.0.1:{node.port}"
        assert status_of(node.port, handshake(own, f"http://{own}")).startswith(b"HTTP/1.1 101")
        public = status_of(node.port, handshake("pea.example", "https://pea.example"))
        assert public.startswith(b"HTTP/1.1 101")


def test_metrics_are_served_on_their_own_port_only() -> None:
    with pea_node() as node:
        assert http_status(node.url + "/metrics") == 404
        with urllib.request.urlopen(node.metrics_url, timeout=5) as resp:
            assert "pea_connections" in resp.read().decode()


async def test_sockets_that_never_join_do_not_fill_a_node() -> None:
    """Before: idle sockets held every place of a node, and everyone else got `unavailable`."""
    with pea_node(max_connections="3", join_timeout="1", max_connections_per_client="0") as node:
        idle = [await websockets.connect(node.ws_url, open_timeout=10) for _ in range(3)]
        for ws in idle:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert frame["type"] == "error" and frame["code"] == "not-joined", frame
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        deadline = time.monotonic() + 10
        while True:  # the node notices the closes a moment later
            peer = await Client.open(node.ws_url)
            await peer.send({"type": "join", "room": new_room()})
            frame = await peer.recv()
            if frame["type"] == "welcome" or time.monotonic() > deadline:
                break
            await peer.close()
        assert frame["type"] == "welcome", frame


async def test_one_address_is_limited_and_forwarded_for_counts_only_from_trusted_proxies() -> None:
    async def open_as(node: PeaNode, forwarded_for: str) -> dict[str, object]:
        ws = await websockets.connect(
            node.ws_url, open_timeout=10, additional_headers={"X-Forwarded-For": forwarded_for}
        )
        opened.append(ws)
        with contextlib.suppress(websockets.ConnectionClosed):  # a refusal may come first
            await ws.send(json.dumps({"type": "join", "room": new_room()}))
        frame: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return frame

    opened: list[websockets.ClientConnection] = []
    try:
        with pea_node(max_connections_per_client="2", trusted_proxies="127.0.0.1") as proxied:
            assert (await open_as(proxied, "203.0.113.1"))["type"] == "welcome"
            assert (await open_as(proxied, "203.0.113.1"))["type"] == "welcome"
            third = await open_as(proxied, "203.0.113.1")
            assert third["type"] == "error" and third["code"] == "unavailable", third
            assert (await open_as(proxied, "203.0.113.2"))["type"] == "welcome"
        with pea_node(max_connections_per_client="2") as direct:
            # No trusted proxy: X-Forwarded-For is the client's word, and ignored.
            assert (await open_as(direct, "203.0.113.1"))["type"] == "welcome"
            assert (await open_as(direct, "203.0.113.2"))["type"] == "welcome"
            third = await open_as(direct, "203.0.113.3")
            assert third["type"] == "error" and third["code"] == "unavailable", third
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(opened[-1].recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    finally:
        for ws in opened:
            await ws.close()


def test_slow_or_silent_clients_are_disconnected_at_the_header_timeout() -> None:
    with pea_node(header_timeout="1") as node:
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as silent:
            answer = read_until_closed(silent, within=5)
        assert answer.startswith(b"HTTP/1.1 408") or answer == b""
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as slow:
            request = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
            start = time.monotonic()
            try:
                for byte in request:  # one byte every 0.1 s: 10 s of headers
                    slow.sendall(bytes([byte]))
                    time.sleep(0.1)
                    if time.monotonic() - start > 8:
                        break
            except OSError:
                pass  # the node closed the socket: what this test wants
            answer = read_until_closed(slow, within=5)
            assert time.monotonic() - start < 8, "the node kept waiting for the headers"
        assert answer.startswith(b"HTTP/1.1 408") or answer == b""
        node_serves_others(node)


def test_huge_headers_are_refused_and_the_node_keeps_serving() -> None:
    with pea_node() as node:
        fits = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 15_000
        assert status_of(node.port, fits + b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        # 17 kB arrives in one piece (the exact count refuses it), 200 kB in many.
        for size in (17_000, 200_000):
            with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
                big = b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * size
                with contextlib.suppress(OSError):  # closed while sending: refused
                    s.sendall(big + b"\r\n\r\n")
                answer = read_until_closed(s, within=5)
            assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:80]
        node_serves_others(node)


def test_a_huge_body_is_answered_without_being_read_whole() -> None:
    with pea_node() as node:
        assert node.proc is not None
        proc = psutil.Process(node.proc.pid)
        before = proc.memory_info().rss
        peak = before
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            s.sendall(
                b"POST /api/qr HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (256 * MiB)
            )
            chunk = b"https://pea.example/#" + b"k" * (MiB - 21)
            deadline = time.monotonic() + 60
            try:
                for _ in range(256):
                    s.sendall(chunk)
                    peak = max(peak, proc.memory_info().rss)
                    if time.monotonic() > deadline:
                        break
            except OSError:
                pass  # the node answered and closed: it did not read the rest
            s.settimeout(10)
            status = s.recv(64).split(b"\r\n")[0]
        peak = max(peak, proc.memory_info().rss)
        assert status.startswith((b"HTTP/1.1 404", b"HTTP/1.1 405")), status
        assert peak - before < 64 * MiB, f"RSS grew by {(peak - before) // MiB} MiB"
        node_serves_others(node)
