"""An aiortc data channel as awaitable messages: text messages parsed as the JSON
objects of docs/transfer-protocol.md §3, binary messages as bytes, and a send side
that waits while the channel's own buffer is full."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from aiortc import RTCDataChannel

HIGH_WATER = 4 << 20  # the send buffer stays under this, counting the chunk about to go…
LOW_WATER = 1 << 20  # …and sending resumes below this (bufferedAmountLowThreshold)
# What a receiver queues before it is written: a sharer keeps within 16 MiB unacknowledged
# (§3.2), so one that sends far more is broken or hostile, and is cut off.
MAX_QUEUED = 48 << 20


class ChannelClosed(Exception):
    pass


class Overrun(Exception):
    pass


Message = dict[str, Any] | bytes


class Channel:
    def __init__(self, ch: RTCDataChannel, on_activity: Callable[[], None] | None = None) -> None:
        self.ch = ch
        self.on_activity = on_activity
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.queued = 0
        self.overrun = False
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self._low = asyncio.Event()
        ch.bufferedAmountLowThreshold = LOW_WATER
        ch.on("message", self._on_message)
        ch.on("open", self.opened.set)
        ch.on("close", self._on_close)
        ch.on("bufferedamountlow", self._low.set)
        if ch.readyState == "open":
            self.opened.set()
        elif ch.readyState == "closed":
            self._on_close()

    @property
    def label(self) -> str:
        return str(self.ch.label)

    def _on_message(self, data: str | bytes) -> None:
        if self.on_activity is not None:
            self.on_activity()
        if self.overrun:
            return
        if isinstance(data, bytes):
            self.queued += len(data)
            if self.queued > MAX_QUEUED:
                self.overrun = True
                self.queue.put_nowait(None)
                self.close()
                return
            self.queue.put_nowait(data)
            return
        if len(data) > 1 << 16:
            return  # no control message is this long
        try:
            msg = json.loads(data)
        except ValueError:
            return
        if isinstance(msg, dict) and isinstance(msg.get("t"), str):
            self.queue.put_nowait(msg)

    def _on_close(self) -> None:
        self.closed.set()
        self._low.set()
        self.queue.put_nowait(None)

    async def recv(self) -> Message:
        """The next message; ChannelClosed when the channel closed (Overrun if flooded)."""
        item = await self.queue.get()
        if item is None:
            self.queue.put_nowait(None)  # every later recv() sees the close too
            if self.overrun:
                raise Overrun()
            raise ChannelClosed()
        if isinstance(item, bytes):
            self.queued -= len(item)
        return item

    async def wait_open(self, within: float) -> None:
        opened = asyncio.create_task(self.opened.wait())
        closed = asyncio.create_task(self.closed.wait())
        try:
            await asyncio.wait([opened, closed], timeout=within, return_when="FIRST_COMPLETED")
        finally:
            opened.cancel()
            closed.cancel()
        if not self.opened.is_set() or self.closed.is_set():
            raise ChannelClosed()

    def send_json(self, obj: dict[str, Any]) -> None:
        if self.ch.readyState != "open":
            raise ChannelClosed()
        self.ch.send(json.dumps(obj, separators=(",", ":")))

    async def send_bytes(self, data: bytes) -> None:
        """Send once the buffer has room for `data` (a ceiling, never overshot)."""
        while self.ch.bufferedAmount + len(data) > HIGH_WATER:
            if self.closed.is_set():
                raise ChannelClosed()
            self._low.clear()
            # A missed event must not stall us: look again at least every second.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._low.wait(), 1)
        if self.ch.readyState != "open":
            raise ChannelClosed()
        self.ch.send(data)

    def close(self) -> None:
        if self.ch.readyState not in ("closing", "closed"):
            self.ch.close()
