"""One WebSocket connection: the read loop, a bounded send queue and the limits.

The reader enforces frame size and rate before anything is parsed, so a flood
or a huge frame costs the node almost nothing and nobody else notices. The
writer drains a bounded queue: a peer that stops reading is dropped instead of
making the node buffer for it without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from pea.protocol import DEPARTURE_CODES, Close, ProtocolError

if TYPE_CHECKING:
    from pea.config import Settings
    from pea.metrics import Metrics

log = logging.getLogger("pea.connection")

FLOOD_CLOSE_AFTER = 50
"""Frames dropped in a row by the rate limit before the connection is closed."""

OVERSIZE_CLOSE_AFTER = 2
"""Oversized frames on one connection before it is closed with 1009."""


class Handler(Protocol):
    async def handle(self, conn: Connection, text: str) -> None: ...

    async def disconnect(self, conn: Connection, departure: bool) -> None: ...


class TokenBucket:
    __slots__ = ("_last", "_rate", "_size", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._size = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._size, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def frame_type(frame: str) -> str:
    # Server frames all start with {"type":"...": no need to parse them again.
    end = frame.find('"', 9)
    return frame[9:end] if frame.startswith('{"type":"') and end > 0 else "unknown"


class Connection:
    # Slots and lazily made tasks and events: an idle peer costs a node little,
    # and a node holds tens of thousands of them.
    __slots__ = (
        "_bucket",
        "_close",
        "_closed",
        "_done",
        "_dropped_in_a_row",
        "_metrics",
        "_oversized",
        "_queue",
        "_queued_bytes",
        "_settings",
        "_writer",
        "buffered",
        "client_code",
        "info",
        "joining",
        "peer",
        "room",
        "ws",
    )

    def __init__(self, ws: WebSocket, settings: Settings, metrics: Metrics) -> None:
        self.ws = ws
        self.room: str | None = None
        self.peer: str | None = None
        self.info = ""
        self.joining = False
        self.buffered: list[str] | None = None
        """Bus envelopes for the room while this connection's join is in flight."""
        self._settings = settings
        self._metrics = metrics
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self._closed: asyncio.Event | None = None
        self._done = False
        self._bucket = TokenBucket(settings.rate_per_second, settings.rate_burst)
        self._dropped_in_a_row = 0
        self._oversized = 0
        self.client_code: int | None = None

    def __repr__(self) -> str:
        return f"<Connection room={self.room} peer={self.peer}>"

    # -- sending ----------------------------------------------------------

    def send(self, frame: str) -> None:
        if self._close is not None:
            return
        if self._queued_bytes + len(frame) > self._settings.send_queue_bytes:
            self._metrics.dropped_slow.inc()
            log.info("dropping a peer that does not read its frames (room=%s)", self.room)
            self.close(Close.POLICY, "too slow: frames not read")
            return
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        self._start_writer()

    def error(self, exc: ProtocolError) -> None:
        self._metrics.errors.inc(exc.code)
        self.send(exc.frame())

    def close(self, code: int, reason: str = "") -> None:
        """Close once the frames already queued are sent."""
        if self._close is None:
            self._close = (code, reason)
            self._start_writer()

    @property
    def closing(self) -> bool:
        return self._close is not None

    async def wait_closed(self) -> None:
        if self._done:
            return
        if self._closed is None:
            self._closed = asyncio.Event()
        await self._closed.wait()

    def _start_writer(self) -> None:
        # The writer lives only while there is something to write.
        if self._writer is None and not self._done:
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        frames_out = self._metrics.frames_out
        try:
            while self._queue:
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                await self.ws.send_text(frame)
                frames_out.inc(frame_type(frame))
            # No await between the emptiness check above and here, so a frame
            # queued meanwhile always finds a writer.
            if self._close is not None:
                code, reason = self._close
                await self.ws.close(code, reason)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._queue.clear()  # the peer is gone; the reader sees the disconnect
        finally:
            self._writer = None

    # -- reading ----------------------------------------------------------

    async def run(self, handler: Handler) -> None:
        try:
            await self._read_loop(handler)
        finally:
            departure = self.client_code in DEPARTURE_CODES
            try:
                await handler.disconnect(self, departure)
            finally:
                writer = self._writer
                if writer is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(writer), 2)
                    writer.cancel()
                elif self.client_code is None and self._close is None:
                    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                        await self.ws.close(Close.NORMAL)
                self._done = True
                if self._closed is not None:
                    self._closed.set()

    async def _read_loop(self, handler: Handler) -> None:
        max_bytes = self._settings.max_frame_bytes
        frames_in = self._metrics.frames_in
        while self._close is None:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                self.client_code = message.get("code", 1006)
                return
            if not self._bucket.take():
                frames_in.inc("dropped")
                self._dropped_in_a_row += 1
                self.error(ProtocolError("rate-limited", "Too many frames; this one was dropped."))
                if self._dropped_in_a_row >= FLOOD_CLOSE_AFTER:
                    self.close(Close.POLICY, "rate limit exceeded")
                continue
            self._dropped_in_a_row = 0
            text = message.get("text")
            if text is None:
                frames_in.inc("binary")
                self.error(ProtocolError("bad-json", "Frames must be text frames holding JSON."))
                continue
            if len(text) > max_bytes // 4 and len(text.encode()) > max_bytes:
                frames_in.inc("too-large")
                self._oversized += 1
                self.error(ProtocolError("too-large", f"Frames may be at most {max_bytes} bytes."))
                if self._oversized >= OVERSIZE_CLOSE_AFTER:
                    self.close(Close.TOO_BIG, "frames too large")
                continue
            await handler.handle(self, text)
