"""A single real `pea serve` process: keepalive pings, HTTPS, logs."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.support.client import Client, new_room
from tests.support.procs import PeaNode, RedisServer, free_port, pea_node, wait_for

pytestmark = pytest.mark.cluster


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def test_a_peer_that_misses_pings_is_dropped_and_reported_left() -> None:
    with pea_node(ping_interval="1", ping_timeout="1", resume_grace="1") as node:
        room = new_room()
        ann = await Client.open(node.ws_url)
        await ann.join(room)
        # A raw client: completes the handshake and joins, then never answers a ping.
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert response.startswith(b"HTTP/1.1 101")
        writer.write(masked_text_frame(json.dumps({"type": "join", "room": room})))
        await writer.drain()
        joined = await ann.expect("peer-joined")
        left = await ann.expect("peer-left", timeout=15)
        assert left["peer"] == joined["peer"]
        writer.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


async def test_https_and_wss_straight_from_the_node(certificate: tuple[str, str]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(cafile=cert)
    port = free_port()
    proc = PeaNode(port, {"PEA_TLS_CERT": cert, "PEA_TLS_KEY": key, "PEA_SECRET": "x" * 32})
    proc.start(wait_ready=False)
    try:

        def up() -> bool:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context) as r:
                return bool(r.status == 200)

        await asyncio.to_thread(wait_for, up, 20, "the HTTPS node")
        async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=context) as ws:
            await ws.send(json.dumps({"type": "join", "room": new_room()}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "welcome"
    finally:
        proc.stop()


def test_json_logs_and_the_random_secret_warning(redis: RedisServer) -> None:
    node = PeaNode(
        free_port(), {"PEA_REDIS_URL": redis.url, "PEA_LOG_JSON": "true", "PEA_SECRET": ""}
    )
    node.start()
    try:
        lines = [json.loads(line) for line in node.log_text().splitlines() if line.strip()]
    finally:
        node.stop()
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in lines)
    warnings = [e["message"] for e in lines if e["level"] == "warning"]
    assert any("PEA_SECRET is not set" in message for message in warnings)
