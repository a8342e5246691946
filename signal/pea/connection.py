"""One WebSocket connection: the read loop, a bounded send queue and the limits.

The reader enforces frame size and rate before anything is parsed, so a flood
or a huge frame costs the node almost nothing and nobody else notices. The
writer drains a bounded queue, and a watchdog times the bytes the peer has not
taken yet: a peer that stops reading has its TCP connection reset (not closed
politely: a close waits for a flush that never comes), instead of making the
node hold its frames, its socket and its place in the room without end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol, cast

from starlette.websockets import WebSocket, WebSocketDisconnect

from pea.errors import DEPARTURE_CODES, Close, Errors, ProtocolError

if TYPE_CHECKING:
    from pea.config import Settings
    from pea.metrics import Metrics

log = logging.getLogger("pea.connection")

FLOOD_CLOSE_AFTER = 50
"""Frames dropped in a row by the rate limit before the connection is closed."""

OVERSIZE_CLOSE_AFTER = 2
"""Oversized frames on one connection before it is closed with 1009."""

WATCH_EVERY = 1.0
"""Seconds between two looks at a connection whose peer has bytes it has not taken."""

KERNEL_GRACE = 10.0
"""Seconds the kernel waits beyond --send-timeout before it gives up on a peer that
acknowledges nothing: pea's own reset (with the client told by a RST) comes first."""


def reset(transport: Transport) -> None:
    """Abort with a TCP reset. A plain abort close()s the socket, and the kernel
    then still tries to deliver the unsent bytes, FIN last, to a peer whose window
    is shut: the peer never learns, and the kernel holds the bytes for minutes.
    Lingering for zero seconds makes close() send RST and drop them."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def bound_unacked(transport: Transport, seconds: float) -> None:
    """Have the kernel drop the connection when bytes it holds for the peer stay
    unacknowledged, or unsent behind a shut window, for `seconds` (Linux
    TCP_USER_TIMEOUT). The backstop for what pea cannot see: frames the kernel
    already took (a stuck peer then waited for a missed pong, and its close sat
    behind them), or a ping stuck behind them while pea had nothing to send."""
    sock = transport.get_extra_info("socket")
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is not None and option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, int(seconds * 1000))


class Transport(Protocol):
    """What pea needs of a transport; asyncio's and uvloop's (no asyncio subclass) both fit."""

    def abort(self) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


def transport_of(ws: WebSocket) -> Transport | None:
    """The TCP transport under `ws`, so that a stuck peer can be reset; None when
    it cannot be reached (then `Connection.abort` falls back to ending the reader).

    ASGI has no "reset": a close, the app returning or raising all end in
    `transport.close()`, which waits for the peer to read what is buffered, and a
    peer that stopped reading never does (uvicorn's own ping timeout ends the same
    way). Private on two sides: Starlette keeps the ASGI receive callable as
    `_receive`, and under uvicorn's websockets-sansio it is the bound method
    `WebSocketsSansIOProtocol.receive`, whose protocol holds `transport`.
    tests/cluster/test_stuck_peers.py::test_transport_reachable_under_uvicorn
    fails if either changes.
    """
    global _warned
    protocol = getattr(getattr(ws, "_receive", None), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if all(
        callable(getattr(transport, m, None))
        for m in ("abort", "get_write_buffer_size", "is_closing")
    ):
        return cast(Transport, transport)
    if not _warned and "uvicorn" in type(protocol).__module__:
        _warned = True
        log.warning("cannot reach uvicorn's transport: stuck peers will not be reset")
    return None


_warned = False


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
        "_aborted",
        "_bucket",
        "_close",
        "_closed",
        "_done",
        "_dropped_in_a_row",
        "_flushed",
        "_metrics",
        "_oversized",
        "_progress_at",
        "_queue",
        "_queued_bytes",
        "_reader",
        "_settings",
        "_transport",
        "_watchdog",
        "_writer",
        "_written",
        "client_code",
        "ws",
    )

    def __init__(self, ws: WebSocket, settings: Settings, metrics: Metrics) -> None:
        self.ws = ws
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
        self._transport = transport_of(ws)
        if self._transport is not None:
            bound_unacked(self._transport, settings.send_timeout + KERNEL_GRACE)
        self._aborted = False
        self._reader: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._written = 0
        """Characters of frames handed to the transport (a byte count, near enough)."""
        self._flushed = 0
        self._progress_at = 0.0

    # -- sending ----------------------------------------------------------

    def send(self, frame: str) -> None:
        if self._close is not None:
            return
        if self._queued_bytes + len(frame) > self._settings.send_queue_bytes:
            self.abort(f"over {self._settings.send_queue_bytes} bytes queued")
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

    def abort(self, why: str, stuck: bool = True) -> None:
        """Reset the TCP connection now, dropping whatever is unsent. The reader
        then sees the connection lost and the node releases the peer as such
        (`away`: the others see `peer-left` after the grace period unless it
        resumes, since a dead network and a peer that stopped reading look alike).
        `stuck`: counted and logged as a peer dropped for not reading."""
        if self._aborted:
            return
        self._aborted = True
        if self._close is None:
            self._close = (1006, why)
        if stuck:
            self._metrics.dropped_slow.inc()
            log.info("resetting a peer that does not read: %s", why)
        self._queue.clear()
        self._queued_bytes = 0
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            reset(self._transport)
        elif self._reader is not None:
            # No transport to reset (not uvicorn): end the read loop at least, so
            # the peer leaves its room and its memory is freed.
            self._reader.cancel()

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
        if self._writer is None and not self._done and not self._aborted:
            self._writer = asyncio.get_running_loop().create_task(self._write())
            if self._transport is None:
                self._watch()  # no buffer to look at: time the writer itself

    async def _write(self) -> None:
        frames_out = self._metrics.frames_out
        transport = self._transport
        try:
            while self._queue:
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                try:
                    await self.ws.send_text(frame)
                except UnicodeEncodeError:
                    # Second line of defence: parse refuses frames that would not
                    # encode; should one slip through, it is dropped, not the peer.
                    frames_out.inc("unencodable")
                    log.warning("dropped a frame that is not valid Unicode")
                    continue
                self._written += len(frame)
                frames_out.inc(frame_type(frame))
                # Inline: the kernel took less than was written, the peer is
                # behind, time it. A peer that keeps up never arms a timer.
                if transport is not None and transport.get_write_buffer_size():
                    self._watch()
            # No await between the emptiness check above and here, so a frame
            # queued meanwhile always finds a writer.
            if self._close is not None and not self._aborted:
                code, reason = self._close
                await self.ws.close(code, reason)
                if self._unsent():
                    self._watch()
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer is gone, or uvicorn gave up on it (a ping timeout) and now
            # waits for a flush that may never come: make sure the socket ends.
            self._queue.clear()
            self._queued_bytes = 0
            self.abort("write failed", stuck=False)
        finally:
            self._writer = None

    # -- the watchdog ------------------------------------------------------

    def _unsent(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def _watch(self) -> None:
        if self._watchdog is None and not self._aborted:
            loop = asyncio.get_running_loop()
            self._flushed = self._written - self._unsent()
            self._progress_at = loop.time()
            self._watchdog = loop.call_later(WATCH_EVERY, self._check)

    def _check(self) -> None:
        """Reset a peer that took none of its bytes for `send_timeout`, or that
        uvicorn is closing (a missed pong, a close) but will not take the rest."""
        self._watchdog = None
        unsent = self._unsent()
        if self._aborted or (unsent == 0 and self._writer is None):
            return  # all taken
        loop = asyncio.get_running_loop()
        now = loop.time()
        flushed = self._written - unsent
        if flushed > self._flushed:
            self._flushed, self._progress_at = flushed, now
        elif self._transport is not None and self._transport.is_closing():
            self.abort("closed, but its last bytes are not read")
            return
        timeout = self._settings.send_timeout
        if now - self._progress_at >= timeout:
            self.abort(f"nothing read for {timeout:g} s")
            return
        self._watchdog = loop.call_later(WATCH_EVERY, self._check)

    # -- reading ----------------------------------------------------------

    async def run(self, handler: Handler) -> None:
        self._reader = task = asyncio.current_task()
        try:
            await self._read_loop(handler)
        except asyncio.CancelledError:
            # Only abort() without a transport cancels the reader on purpose.
            if not self._aborted or task is None or task.uncancel() > 0:
                raise
        finally:
            self._reader = None
            departure = self.client_code in DEPARTURE_CODES
            try:
                await handler.disconnect(self, departure)
            finally:
                writer = self._writer
                if writer is not None:
                    if not self._aborted:  # frames for a reset peer are dropped anyway
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
                self.error(Errors.RATE_LIMITED.error())
                if self._dropped_in_a_row >= FLOOD_CLOSE_AFTER:
                    self.close(Close.POLICY, "rate limit exceeded")
                continue
            self._dropped_in_a_row = 0
            text = message.get("text")
            if text is None:
                frames_in.inc("binary")
                self.error(Errors.BINARY_FRAME.error())
                continue
            if len(text) > max_bytes // 4 and len(text.encode()) > max_bytes:
                frames_in.inc("too-large")
                self._oversized += 1
                self.error(Errors.TOO_LARGE.error(limit=max_bytes))
                if self._oversized >= OVERSIZE_CLOSE_AFTER:
                    self.close(Close.TOO_BIG, "frames too large")
                continue
            await handler.handle(self, text)
