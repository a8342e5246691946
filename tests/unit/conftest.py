from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pea.app import create_app
from pea.config import Settings

ROOM = "room-aaaaaaaaaaaaaaaaaaaa"
OTHER_ROOM = "room-bbbbbbbbbbbbbbbbbbbb"


class Peer:
    """A test client speaking the protocol over Starlette's in-process WebSocket."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.id: str | None = None
        self.welcome: dict[str, Any] = {}

    def send(self, obj: Any) -> None:
        self.ws.send_text(obj if isinstance(obj, str) else json.dumps(obj))

    def recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = self.ws.receive_json()
        return frame

    def join(self, room: str = ROOM, **fields: Any) -> dict[str, Any]:
        self.send({"type": "join", "room": room, **fields})
        self.welcome = self.expect("welcome")
        self.id = self.welcome["peer"]
        return self.welcome

    def expect(self, kind: str) -> dict[str, Any]:
        frame = self.recv()
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    def expect_error(self, code: str) -> dict[str, Any]:
        frame = self.expect("error")
        assert frame["code"] == code, frame
        assert isinstance(frame["message"], str) and frame["message"]
        return frame

    def quiet(self) -> None:
        """Nothing arrived before this point: a ping's pong is the next frame."""
        self.send({"type": "ping"})
        frame = self.recv()
        assert frame == {"type": "pong"}, f"unexpected frame {frame}"

    def expect_close(self) -> int:
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(1000):
                self.recv()
        return info.value.code


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(**{"ice_servers": [], "secret": "s" * 32, **overrides})
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def connect(client: TestClient) -> Iterator[Callable[..., Peer]]:
    with peers_of(client) as connect:
        yield connect


@contextmanager
def peers_of(client: TestClient) -> Iterator[Callable[..., Peer]]:
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
