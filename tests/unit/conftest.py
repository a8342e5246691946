"""Fixtures only: helpers live in tests/support/inproc.py (tests never import a conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.support.inproc import Peer, make_app_client, peers_of


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = make_app_client(**overrides)
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
