"""pea in-process for unit tests: an app per test and peers on Starlette's TestClient.

The peer speaks the same frames, with the same checks, as the WebSocket client
(tests/support/client.py), only synchronously over the in-process transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pea.app import create_app
from pea.config import Settings
from tests.support.client import PING, PONG, Frame, check, check_error, encode, join_frame

ROOM = "room-aaaaaaaaaaaaaaaaaaaa"
OTHER_ROOM = "room-bbbbbbbbbbbbbbbbbbbb"


def make_app_client(**overrides: Any) -> TestClient:
    """A TestClient for a fresh app (memory bus, no STUN); the caller enters and exits it."""
    settings = Settings(**{"ice_servers": [], "secret": "s" * 32, **overrides})
    return TestClient(create_app(settings))


class Peer:
    """A test client speaking the protocol over Starlette's in-process WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.id: str | None = None
        self.welcome: Frame = {}

    def send(self, frame: Frame | str) -> None:
        self.ws.send_text(encode(frame))

    def recv(self) -> Frame:
        frame: Frame = self.ws.receive_json()
        return frame

    def join(self, room: str = ROOM, **fields: Any) -> Frame:
        self.send(join_frame(room, **fields))
        self.welcome = self.expect("welcome")
        self.id = self.welcome["peer"]
        return self.welcome

    def expect(self, kind: str) -> Frame:
        return check(self.recv(), kind)

    def expect_error(self, code: str) -> Frame:
        return check_error(self.recv(), code)

    def quiet(self) -> None:
        """Nothing arrived before this point: a ping's pong is the next frame."""
        self.send(PING)
        frame = self.recv()
        assert frame == PONG, f"unexpected frame {frame}"

    def expect_close(self) -> int:
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(1000):
                self.recv()
        return info.value.code


@contextmanager
def peers_of(client: TestClient) -> Iterator[Callable[..., Peer]]:
    """connect(**headers) opens a peer on client's app; all are closed on exit."""
    opened: list[Any] = []

    def connect(**headers: str) -> Peer:
        ctx = client.websocket_connect("/ws", headers=headers)
        ws = ctx.__enter__()
        opened.append(ctx)
        return Peer(ws)

    try:
        yield connect
    finally:
        for ctx in reversed(opened):
            with suppress(Exception):
                ctx.__exit__(None, None, None)
