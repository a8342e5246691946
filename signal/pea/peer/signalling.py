"""The signalling client (docs/protocol.md): one WebSocket to a pea node, a room
joined, frames in and out. Keeps the room through a node's drain or a dropped
connection by joining again with the `resume` token (same peer id), within bounds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from pea.peer.exits import Exit, PeerError

log = logging.getLogger("pea.peer")

Frame = dict[str, Any]
Handler = Callable[[Frame], Awaitable[None]]

CONNECT_TIMEOUT = 15.0
RECONNECT_FOR = 30.0  # how long a lost signalling connection is retried before giving up
# Errors after which joining again cannot help (docs/protocol.md, "client retries: stops").
FATAL_CODES = {"bad-room", "room-full"}


class Signalling:
    def __init__(self, ws_url: str, room: str, on_frame: Handler, name: str | None = None) -> None:
        self.ws_url = ws_url
        self.room = room
        self.name = name
        self.on_frame = on_frame
        self.peer = ""
        self.resume = ""
        self.config: dict[str, Any] = {}
        self.ws: ClientConnection | None = None
        self.closed = asyncio.Event()
        self.failure: PeerError | None = None
        self._task: asyncio.Task[None] | None = None
        self._leaving = False

    async def _open(self) -> Frame:
        try:
            ws = await asyncio.wait_for(
                connect(
                    self.ws_url,
                    open_timeout=CONNECT_TIMEOUT,
                    max_size=1 << 20,
                    compression=None,
                    # Our own pings are not needed: the server pings us (and we answer).
                    ping_interval=None,
                ),
                CONNECT_TIMEOUT + 1,
            )
        except ssl.SSLCertVerificationError as e:
            raise PeerError(
                Exit.SERVER_UNREACHABLE,
                f"the server's TLS certificate did not verify ({e.verify_message})",
            ) from None
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as e:
            raise PeerError(
                Exit.SERVER_UNREACHABLE, f"cannot reach the pea server at {self.ws_url}: {e}"
            ) from None
        join: Frame = {"type": "join", "room": self.room}
        if self.name:
            join["name"] = self.name
        if self.resume:
            join["resume"] = self.resume
        await ws.send(json.dumps(join))
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT)
            except (ConnectionClosed, TimeoutError) as e:
                await ws.close()
                raise PeerError(
                    Exit.SERVER_UNREACHABLE, f"the pea server did not let us join: {e}"
                ) from None
            frame = _parse(raw)
            if frame is None:
                continue
            if frame.get("type") == "welcome":
                self.ws = ws
                return frame
            if frame.get("type") in ("error", "reconnect"):
                await ws.close()
                said = frame.get("message") or frame.get("type")
                raise PeerError(Exit.SERVER_UNREACHABLE, f"the pea server refused us: {said}")

    async def start(self) -> Frame:
        """Connect and join; the `welcome` frame. PeerError(SERVER_UNREACHABLE) if not."""
        welcome = await self._open()
        self._welcomed(welcome)
        self._task = asyncio.create_task(self._run())
        return welcome

    def _welcomed(self, welcome: Frame) -> None:
        self.peer = str(welcome.get("peer", ""))
        self.resume = str(welcome.get("resume", ""))
        config = welcome.get("config")
        self.config = config if isinstance(config, dict) else {}

    async def _run(self) -> None:
        try:
            while True:
                await self._read()
                if self._leaving:
                    return
                await self._reconnect()
        except PeerError as e:
            self.failure = e
        finally:
            self.closed.set()

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = _parse(raw)
                if frame is None:
                    continue
                kind = frame.get("type")
                if kind == "reconnect":
                    delay = frame.get("after_ms")
                    wait = (
                        min(float(delay), 10_000) / 1000 if isinstance(delay, int | float) else 0.5
                    )
                    await asyncio.sleep(max(wait, 0))
                    break
                if kind == "error" and frame.get("code") in FATAL_CODES:
                    raise PeerError(
                        Exit.SERVER_UNREACHABLE,
                        f"the pea server refused us: {frame.get('message')}",
                    )
                if kind == "error":
                    log.info("server error: %s", frame)
                await self.on_frame(frame)
        except ConnectionClosed:
            pass
        with contextlib.suppress(Exception):
            await self.ws.close()

    async def _reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECONNECT_FOR
        delay = 0.2
        while True:
            try:
                welcome = await self._open()
            except PeerError:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3)
                continue
            old = self.peer
            self._welcomed(welcome)
            if self.peer != old:
                # The grace period passed: we are a new peer, the others see a newcomer.
                await self.on_frame({**welcome, "type": "rejoined"})
            return

    async def signal(self, to: str, data: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "signal", "to": to, "data": data}))

    @property
    def takes_outcome(self) -> bool:
        """Did the node announce protocol 1.1 or a later 1.x? (A 1.0 node would answer an
        `outcome` with bad-message.)"""
        v = self.config.get("protocol")
        m = re.fullmatch(r"1\.(\d+)", v) if isinstance(v, str) else None
        return m is not None and int(m[1]) >= 1

    async def outcome(self, report: dict[str, Any]) -> None:
        """How one direct connection ended, for the node's metrics: sent now or never (a
        report is not queued across a reconnection), like the web client's."""
        ws = self.ws
        if ws is None or not self.takes_outcome:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "outcome", **report}))

    async def close(self) -> None:
        self._leaving = True
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.send(json.dumps({"type": "leave"}))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "bye"), 3)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _parse(raw: str | bytes) -> Frame | None:
    try:
        frame = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return frame if isinstance(frame, dict) else None
