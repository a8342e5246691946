"""A signalling relay that tampers: it sits in front of one pea node, serves that node's
pages unchanged, and passes /ws frames both ways through `alter`, like a compromised
server or a network in the middle would. Runs in a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.support.procs import free_port

FINGERPRINT = re.compile(r"(a=fingerprint:sha-256 )([0-9A-F]{2})")
PASSED_HEADERS = ("content-type", "content-security-policy", "cache-control")


def forge_fingerprint(frame: dict[str, Any]) -> dict[str, Any]:
    """Swap the DTLS fingerprint in a signalled offer or answer (what a MITM must do)."""
    data = frame.get("data")
    if frame.get("type") == "signal" and isinstance(data, dict):
        payload = data.get("payload")
        if isinstance(payload, str) and "a=fingerprint:" in payload:
            data["payload"] = FINGERPRINT.sub(
                lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"), payload, count=1
            )
    return frame


class TamperingRelay:
    def __init__(
        self,
        upstream: str,
        to_browser: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        to_server: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.to_browser = to_browser or (lambda f: f)
        self.to_server = to_server or (lambda f: f)
        self.port = free_port()
        self.altered = 0
        # Per browser connection: its own peer id and the peers it was told about.
        self.browsers: dict[ServerConnection, dict[str, Any]] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pass(self, raw: str | bytes, alter: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
        text = raw.decode() if isinstance(raw, bytes) else raw
        frame = json.loads(text)
        out = json.dumps(alter(json.loads(text)))
        if json.loads(out) != frame:
            self.altered += 1
        return out

    async def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.path == "/ws":
            return None
        path = request.path

        def fetch() -> tuple[int, dict[str, str], bytes]:
            try:
                with urllib.request.urlopen(self.upstream + path, timeout=5) as r:
                    return r.status, dict(r.headers), r.read()
            except urllib.error.HTTPError as e:
                return e.code, dict(e.headers), e.read()

        status, headers, body = await asyncio.to_thread(fetch)
        kept = Headers()
        for k, v in headers.items():
            if k.lower() in PASSED_HEADERS:
                kept[k] = v
        kept["Content-Length"] = str(len(body))
        return Response(status, "OK" if status == 200 else "Error", kept, body)

    async def _ws(self, browser: ServerConnection) -> None:
        ws_url = self.upstream.replace("http://", "ws://") + "/ws"
        async with connect(ws_url, origin=self.upstream) as server:  # type: ignore[arg-type]

            async def up() -> None:
                async for raw in browser:
                    await server.send(self._pass(raw, self.to_server))

            async def down() -> None:
                async for raw in server:
                    out = self._pass(raw, self.to_browser)
                    self._note(browser, json.loads(out))
                    await browser.send(out)

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()

    def _note(self, browser: ServerConnection, frame: dict[str, Any]) -> None:
        seen = self.browsers.setdefault(browser, {"peer": None, "others": []})
        if frame.get("type") == "welcome":
            seen["peer"] = frame.get("peer")
            seen["others"] += [p.get("peer") for p in frame.get("peers", [])]
        elif frame.get("type") == "peer-joined":
            seen["others"].append(frame.get("peer"))

    def inject_forged(self, kind: str = "candidate") -> int:
        """Deliver to every browser behind this relay, as if from each peer it knows, a
        signal whose MAC is wrong (what a server without the secret can do at any time).
        Returns how many were sent."""

        async def send_all() -> int:
            n = 0
            for browser, seen in list(self.browsers.items()):
                for other in seen["others"]:
                    data = {"v": 1, "kind": kind, "payload": "{}", "mac": "0" * 64}
                    await browser.send(json.dumps({"type": "signal", "from": other, "data": data}))
                    n += 1
            return n

        return asyncio.run_coroutine_threadsafe(send_all(), self._loop).result(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._ws, "127.0.0.1", self.port, process_request=self._http):
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("relay did not start")

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextlib.contextmanager
def tampering_relay(upstream: str, **alter: Any) -> Iterator[TamperingRelay]:
    relay = TamperingRelay(upstream, **alter)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
