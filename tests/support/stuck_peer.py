"""A peer that joins a room and then never reads again, over a raw TCP socket.

Its receive buffer is tiny and it never calls recv() after the welcome, so the
node's frames for it pile up in the kernel and then in the node; it never
answers a WebSocket ping either. Used by tests/cluster/test_stuck_peers.py and
bench/stuck_peers.py. Blocking sockets, every call under a timeout; the framing is
tests/support/client.py's.
"""

from __future__ import annotations

import json
import os
import socket

from tests.support.client import (
    OP_TEXT,
    Frame,
    decode_frame,
    encode_text,
    handshake_request,
    handshake_response,
    join_frame,
)

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
        self.sock.sendall(handshake_request(f"127.0.0.1:{port}"))
        self._buf = b""
        while (done := handshake_response(self._buf)) is None:
            self._buf += self._recv_some()
        self._buf = self._buf[done[1] :]
        self.id: str | None = None

    def _recv_some(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the node closed the connection")
        return chunk

    def send(self, obj: Frame) -> None:
        self.sock.sendall(encode_text(obj, os.urandom(4)))

    def recv(self) -> Frame:
        """The next text frame (pings and other control frames are skipped, unanswered)."""
        while True:
            while (got := decode_frame(self._buf)) is None:
                self._buf += self._recv_some()
            opcode, payload, end = got
            self._buf = self._buf[end:]
            if opcode == OP_TEXT:
                frame: Frame = json.loads(payload)
                return frame

    def join(self, room: str) -> str:
        self.send(join_frame(room))
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
