"""A peer that joins a room and then never reads again, over a raw TCP socket.

Its receive buffer is tiny and it never calls recv() after the welcome, so the
node's frames for it pile up in the kernel and then in the node; it never
answers a WebSocket ping either. Used by tests/cluster/test_stuck_peers.py and
bench/stuck_peers.py. Blocking sockets, every call under a timeout.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any

TCP_ESTABLISHED = 1
TCP_CLOSE = 7
"""Linux TCP states (tcp_states.h): CLOSE right after a reset from the other side."""


class StuckPeer:
    def __init__(
        self, port: int, rcvbuf: int = 4096, mss: int | None = None, timeout: float = 10
    ) -> None:
        self.sock = socket.socket()
        # Before connect(), so the window the node sees stays this small.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss is not None:
            # Small segments keep the node's kernel from growing its send buffer
            # for this socket to megabytes: the node's own queue fills sooner.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self._buf = b""
        while b"\r\n\r\n" not in self._buf:
            self._buf += self._recv_some()
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        self.id: str | None = None

    def _recv_some(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        return chunk

    def _take(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._buf += self._recv_some()
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def send(self, obj: Any) -> None:
        payload = json.dumps(obj).encode()
        mask = os.urandom(4)
        n = len(payload)
        header = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv(self) -> dict[str, Any]:
        """The next text frame (pings and other control frames are skipped, unanswered)."""
        while True:
            first, second = self._take(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8))[0]
            payload = self._take(n)
            if first & 0x0F == 0x1:
                frame: dict[str, Any] = json.loads(payload)
                return frame

    def join(self, room: str) -> str:
        self.send({"type": "join", "room": room})
        while True:
            frame = self.recv()
            if frame["type"] == "welcome":
                self.id = str(frame["peer"])
                return self.id

    def tcp_state(self) -> int:
        """The socket's TCP state, read without reading any data (Linux TCP_INFO)."""
        info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        return info[0]

    def close(self) -> None:
        self.sock.close()
