"""The one Python client of pea's signalling protocol (docs/protocol.md).

* `Client`: an async client over a real WebSocket (the `websockets` library), for
  tests against `pea serve` processes, `make cluster` and the benchmarks; every
  wait has a timeout.
* The frames themselves (`join_frame`, `signal_frame`, ...) and `check`, shared
  with the in-process test peer (tests/support/inproc.py).
* The raw WebSocket framing and handshake (RFC 6455) for the clients that must
  own their socket: a peer that stops reading (tests/support/stuck_peer.py) and
  the load generator's lean asyncio protocol (bench/signal_load.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import struct
from typing import Any, ClassVar

from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]

# -- protocol frames -------------------------------------------------------------------


def new_room() -> str:
    """A fresh room name, as unguessable as the web client's."""
    return secrets.token_urlsafe(16)


def join_frame(room: str, **fields: Any) -> Frame:
    """`join`; fields: name, resume."""
    return {"type": "join", "room": room, **fields}


def signal_frame(to: str, data: Any) -> Frame:
    return {"type": "signal", "to": to, "data": data}


LEAVE: Frame = {"type": "leave"}
PING: Frame = {"type": "ping"}
PONG: Frame = {"type": "pong"}


def encode(frame: Frame | str) -> str:
    """A frame as the text sent on the wire (a str goes as it is: hostile input)."""
    return frame if isinstance(frame, str) else json.dumps(frame)


def check(frame: Frame, kind: str) -> Frame:
    """The frame, if it is of type `kind`; else fail the test showing what came."""
    assert frame.get("type") == kind, f"expected {kind}, got {frame}"
    return frame


def check_error(frame: Frame, code: str) -> Frame:
    """An `error` frame with this code and a sentence for people."""
    check(frame, "error")
    assert frame["code"] == code, frame
    assert isinstance(frame["message"], str) and frame["message"]
    return frame


# -- the async client ------------------------------------------------------------------


class Client:
    """A protocol client over a real WebSocket; every wait has a timeout."""

    unclosed: ClassVar[set[Client]] = set()
    """Clients not closed yet: `close_all` ends them after a test (no socket leaks)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.id: str | None = None
        self.welcome: Frame = {}
        Client.unclosed.add(self)

    @classmethod
    async def close_all(cls, timeout: float = 5) -> None:
        """Drop every client still open, without a closing handshake."""
        while cls.unclosed:
            client = cls.unclosed.pop()
            client.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.wait_closed(), timeout)

    @classmethod
    async def open(cls, url: str, timeout: float = 10, **options: Any) -> Client:
        """Connect to a node's or the load balancer's ws:// URL."""
        return cls(await connect(url, open_timeout=timeout, max_size=None, **options))

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(encode(frame))

    async def recv(self, timeout: float = 10) -> Frame:
        frame: Frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def expect(self, kind: str, timeout: float = 10) -> Frame:
        """The next frame, which must be of type `kind`."""
        return check(await self.recv(timeout), kind)

    async def expect_error(self, code: str, timeout: float = 10) -> Frame:
        return check_error(await self.recv(timeout), code)

    async def wait_for(self, kind: str, timeout: float = 10) -> Frame:
        """The first frame of type `kind`, skipping the others, all within timeout."""
        async with asyncio.timeout(timeout):
            while (frame := await self.recv(timeout))["type"] != kind:
                pass
        return frame

    async def join(self, room: str, **fields: Any) -> Frame:
        """Join and wait for the welcome; remembers our peer id and resume token."""
        await self.send(join_frame(room, **fields))
        self.welcome = await self.expect("welcome")
        self.id = self.welcome["peer"]
        return self.welcome

    async def signal(self, to: str, data: Any) -> None:
        await self.send(signal_frame(to, data))

    async def leave(self) -> None:
        await self.send(LEAVE)

    async def ping(self, timeout: float = 10) -> None:
        await self.send(PING)
        await self.expect("pong", timeout)

    async def quiet(self, timeout: float = 10) -> None:
        """Nothing arrived before this point: a ping's pong is the next frame."""
        await self.send(PING)
        frame = await self.recv(timeout)
        assert frame == PONG, f"unexpected frame {frame}"

    def abort(self) -> None:
        """Lose the connection without a close frame, like a dropped network."""
        self.ws.transport.abort()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        Client.unclosed.discard(self)
        await self.ws.close(code, reason)


# -- raw WebSocket framing (RFC 6455), for clients that own their socket -----------------

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA
ZERO_MASK = b"\0\0\0\0"
"""A valid client mask key that makes masking a no-op: the cheapest client frames."""


def handshake_request(host: str, path: str = "/ws", extra: str = "") -> bytes:
    """The HTTP upgrade request that opens a WebSocket.

    host is the Host header ("127.0.0.1:8080"); extra, more header lines (each
    ending in CRLF), sent as they are.
    """
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def handshake_response(buf: bytes | bytearray) -> tuple[bytes, int] | None:
    """(status line, length of the response head) once it is all in buf, else None.

    Raises ConnectionError when the server refused the upgrade.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    status = bytes(buf[: buf.find(b"\r\n")])
    if not status.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {status[:80].decode(errors='replace')}")
    return status, end + 4


def encode_frame(opcode: int, payload: bytes, mask: bytes = ZERO_MASK) -> bytes:
    """One final client frame (clients must mask; the zero key makes that free)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0xFE)) + struct.pack("!H", n)
    else:
        head = bytes((0x80 | opcode, 0xFF)) + struct.pack("!Q", n)
    if mask != ZERO_MASK:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return head + mask + payload


def encode_text(frame: Frame | str, mask: bytes = ZERO_MASK) -> bytes:
    return encode_frame(OP_TEXT, encode(frame).encode(), mask)


def decode_frame(buf: bytes | bytearray, pos: int = 0) -> tuple[int, bytes, int] | None:
    """(opcode, payload, end) of the server frame at buf[pos:], or None if incomplete.

    Server frames are unmasked, and pea's are never fragmented.
    """
    size = len(buf)
    if size - pos < 2:
        return None
    opcode, length, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
    if length == 126:
        if size - pos < 4:
            return None
        length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
    elif length == 127:
        if size - pos < 10:
            return None
        length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
    end = pos + head + length
    if size < end:
        return None
    return opcode, bytes(buf[pos + head : end]), end
