"""Browser tests: Debian Chromium driven by Playwright, inside a loopback-only network namespace.

Run them with `make test-e2e`, which wraps pytest in `unshare -n`. Started any other way
(where the machine has more than `lo`), they skip rather than let a browser touch a real
network.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM
from tests.support.browser import CHROMIUM_ARGS as BASE_CHROMIUM_ARGS
from tests.support.procs import ROOT, PeaNode, RedisServer, pea_node, redis_server

CHROMIUM_ARGS = [
    *BASE_CHROMIUM_ARGS,
    # A non-local host name that still lands on loopback: the page is then not a secure context.
    "--host-resolver-rules=MAP lan.pea.test 127.0.0.1",
]
STATIC = ROOT / "signal" / "pea" / "static" / "index.html"
MiB = 1 << 20


def _only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not _only_loopback():
        reason = "browser tests run only inside a loopback-only namespace: use `make test-e2e`"
    elif CHROMIUM is None:
        reason = "Debian chromium is not installed (make system-deps)"
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
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30000)
        try:
            yield b
        finally:
            b.close()


class Pages:
    """Opens pages each in its own browser context (its own storage and service worker),
    and fails the test if any page throws an uncaught error."""

    def __init__(self, browser: object) -> None:
        self.browser = browser
        self.contexts: list[object] = []
        self.errors: list[str] = []

    def new(self, *, grant: bool = True) -> object:
        ctx = self.browser.new_context(accept_downloads=True)  # type: ignore[attr-defined]
        if grant:
            # Without media permission Chromium gathers no loopback candidate at all.
            ctx.grant_permissions(["microphone"])
        ctx.set_default_timeout(30000)
        self.contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()  # type: ignore[attr-defined]


@pytest.fixture
def pages(browser: object) -> Iterator[Pages]:
    p = Pages(browser)
    try:
        yield p
    finally:
        p.close()
    assert not p.errors, f"uncaught errors in pages: {p.errors}"


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def write_random(path: Path, size: int) -> None:
    """Incompressible content, written in blocks so 200 MiB never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n


@pytest.fixture(scope="session")
def share_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pea-e2e-") as d:
        yield Path(d)
