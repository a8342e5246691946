"""A recording proxy in front of one pea node: what a server operator (or any proxy on the
way) could see. It forwards every HTTP request (any method, every header, the body) and
every WebSocket frame both ways, and keeps a copy of all of it, so a test can search
everything a browser ever sent to the server. `to_browser` can turn one server frame into
several (a replaying network), and `inject` sends a frame to every browser socket.

Runs uvicorn + Starlette in a thread with its own event loop (not the websockets server
that relay.py uses: that one only parses GET requests, and a leak hides in a POST body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from tests.support.procs import free_port

Frames = Callable[[dict[str, Any]], list[dict[str, Any]]]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "content-length", "host"}
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


@dataclass(frozen=True)
class Record:
    what: str  # "http", "ws-open", "ws-up" (browser → server), "ws-down" (server → browser)
    data: bytes


class RecordingProxy:
    def __init__(self, upstream: str, to_browser: Frames | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.to_browser = to_browser
        self.port = free_port()
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._browsers: list[tuple[WebSocket, asyncio.AbstractEventLoop]] = []
        app = Starlette(
            routes=[
                WebSocketRoute("/ws", self._ws),
                Route("/{path:path}", self._http, methods=METHODS),
            ]
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=3
        )
        config.lifespan = "off"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, what: str, data: bytes) -> None:
        with self._lock:
            self.records.append(Record(what, data))

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def frames(self, what: str) -> list[dict[str, Any]]:
        """Recorded WebSocket frames of one direction, as JSON objects."""
        return [json.loads(r.data) for r in self.snapshot() if r.what == what]

    @staticmethod
    def _head(line: str, raw_headers: list[tuple[bytes, bytes]]) -> bytes:
        return line.encode() + b"\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in raw_headers)

    async def _http(self, request: Request) -> Response:
        body = await request.body()
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        self._record(
            "http",
            self._head(f"{request.method} {target} HTTP/1.1", request.headers.raw) + b"\r\n" + body,
        )
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}

        def fetch() -> tuple[int, list[tuple[str, str]], bytes]:
            req = urllib.request.Request(
                self.upstream + target, data=body or None, method=request.method, headers=headers
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, list(r.headers.items()), r.read()
            except urllib.error.HTTPError as e:
                return e.code, list(e.headers.items()), e.read()

        status, resp_headers, data = await asyncio.to_thread(fetch)
        kept = {k: v for k, v in resp_headers if k.lower() not in HOP_BY_HOP}
        return Response(data, status_code=status, headers=kept)

    async def _ws(self, browser: WebSocket) -> None:
        target = browser.url.path + (f"?{browser.url.query}" if browser.url.query else "")
        self._record("ws-open", self._head(f"GET {target} HTTP/1.1", browser.headers.raw))
        await browser.accept()
        ws_url = self.upstream.replace("http://", "ws://") + "/ws"
        me = (browser, asyncio.get_running_loop())
        async with connect(ws_url, origin=self.upstream) as server:  # type: ignore[arg-type]
            with self._lock:
                self._browsers.append(me)

            async def up() -> None:
                with contextlib.suppress(WebSocketDisconnect):
                    while True:
                        text = await browser.receive_text()
                        self._record("ws-up", text.encode())
                        await server.send(text)

            async def down() -> None:
                async for raw in server:
                    text = raw.decode() if isinstance(raw, bytes) else raw
                    self._record("ws-down", text.encode())
                    if self.to_browser is None:
                        await browser.send_text(text)
                    else:
                        for frame in self.to_browser(json.loads(text)):
                            await browser.send_text(json.dumps(frame))

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                with self._lock:
                    self._browsers.remove(me)
                with contextlib.suppress(Exception):
                    await browser.close()

    def inject(self, frame: dict[str, Any]) -> int:
        """Send one frame to every connected browser, as if the server had; returns how many."""
        with self._lock:
            targets = list(self._browsers)
        for ws, loop in targets:
            fut = asyncio.run_coroutine_threadsafe(ws.send_text(json.dumps(frame)), loop)
            fut.result(timeout=5)
        return len(targets)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError("recording proxy did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@contextlib.contextmanager
def recording_proxy(upstream: str, to_browser: Frames | None = None) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy(upstream, to_browser)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
