"""Browser tests: Debian Chromium and Firefox ESR driven by Playwright, inside a
loopback-only network namespace. Every test runs once per engine (the `engine` fixture).

Run them with `make test-e2e`, which wraps pytest in `unshare -n`. Started any other way
(where the machine has more than `lo`), they skip rather than let a browser touch a real
network.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import ENGINES
from tests.support.pages import STATIC, Browsers, Pages
from tests.support.procs import PeaNode, RedisServer, pea_node, redis_server


def _only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not _only_loopback():
        reason = "browser tests run only inside a loopback-only namespace: use `make test-e2e`"
    elif not STATIC.is_file():
        reason = "the web bundle is not built (make web)"
    for item in items:
        item.add_marker(pytest.mark.e2e)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="session")
def cluster(redis: RedisServer) -> Iterator[tuple[PeaNode, PeaNode]]:
    """Two pea nodes sharing one real redis-server; no STUN inside the namespace."""
    with (
        pea_node(redis_url=redis.url, ice_servers="[]") as a,
        pea_node(redis_url=redis.url, ice_servers="[]") as b,
    ):
        yield a, b


@pytest.fixture(scope="session")
def browsers() -> Iterator[Browsers]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="pea-downloads-") as d, sync_playwright() as pw:
        b = Browsers(pw, Path(d))
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Every browser test runs once per engine; session scope groups them by engine."""
    return str(request.param)


@pytest.fixture
def browser(browsers: Browsers, engine: str) -> Any:
    return browsers.get(engine)


@pytest.fixture
def pages(browsers: Browsers, engine: str) -> Iterator[Pages]:
    p = Pages(browsers, engine)
    try:
        yield p
    finally:
        p.close()
    assert not p.errors, f"uncaught errors in pages: {p.errors}"


@pytest.fixture(scope="session")
def share_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pea-e2e-") as d:
        yield Path(d)
