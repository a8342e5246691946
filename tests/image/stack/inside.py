"""What people and peers do with the compose stack, run from inside its network namespace.

Not collected by `pytest tests/image` (no test_ prefix): test_stack.py runs it with
`ip netns exec` in the namespace where the stack's engine runs, so the browsers and
clients here see only that namespace: its loopback (nginx's published port) and the
stack's own network. Settings come from the environment test_stack.py passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import http_status, metric, wait_for, wait_for_async
from tests.support.rolling import (
    assert_nobody_noticed,
    join_pairs,
    make_pairs,
    restart_while_chatting,
)

URL = os.environ.get("PEA_STACK_URL", "")
COMPOSE = json.loads(os.environ.get("PEA_STACK_COMPOSE", "[]"))
NODES = ("pea1", "pea2", "pea3")
ROOMS = 30
SETTLE_TIMEOUT = 60.0

pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(
        not URL, reason="run by tests/image/test_stack.py inside the stack's namespace"
    ),
]


def compose(*args: str, timeout: float = 120) -> str:
    out = subprocess.run(
        [*COMPOSE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert out.returncode == 0, (
        f"compose {' '.join(args)}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
    )
    return out.stdout


def node_address(service: str) -> str:
    """The node's address on the stack's network (it publishes nothing on loopback)."""
    cid = compose("ps", "-q", service).strip()
    fmt = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    out = subprocess.run(
        ["/usr/bin/docker", "inspect", "--format", fmt, cid],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def peers_on(service: str) -> int:
    return int(metric(f"http://{node_address(service)}:9090/metrics", "pea_peers"))


def placement() -> dict[str, int]:
    return {n: peers_on(n) for n in NODES}


# -- a browser transfer through nginx between two nodes -----------------------------------


@pytest.fixture(scope="module")
def pages() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from tests.support.pages import Browsers, Pages

    with tempfile.TemporaryDirectory(prefix="pea-stack-dl-") as d, sync_playwright() as pw:
        browsers = Browsers(pw, Path(d))
        p = Pages(browsers, "chromium")
        try:
            yield p
        finally:
            p.close()
            browsers.close()
        assert not p.errors, f"uncaught errors in pages: {p.errors}"


def test_browser_transfer_through_nginx_between_two_nodes(pages: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from tests.e2e.flows import download, fragment, open_link, row, share
    from tests.support.pages import MiB, sha256_file, write_random

    src = tmp_path / "through-compose.bin"
    write_random(src, 8 * MiB)
    sharer = pages.new()
    link = share(sharer, URL, [src])
    wait_for(lambda: sum(placement().values()) == 1, 15, "the sharer's connection")
    sharer_node = next(n for n, count in placement().items() if count)
    # nginx balances round robin: a few tries put the receiver on another node.
    for _ in range(8):
        receiver = pages.new()
        open_link(receiver, URL + "/" + fragment(link), expect_files=1)
        wait_for(lambda: sum(placement().values()) == 2, 15, "the receiver's connection")
        if placement()[sharer_node] == 1:
            break
        receiver.context.close()
        wait_for(lambda: sum(placement().values()) == 1, 30, "the closed receiver to leave")
    else:
        pytest.fail(f"8 receivers all landed on {sharer_node}: is nginx balancing?")
    got = download(receiver, src.name)
    assert sha256_file(got) == sha256_file(src)
    expect(row(receiver, src.name)).to_contain_text("verified")
    print(f"\nsharer on {sharer_node}, receiver on another node; placement {placement()}")


# -- a rolling restart under load ----------------------------------------------------------


async def restart(node: str) -> float:
    """`docker compose restart` (SIGTERM: it drains), until ready behind nginx: its seconds."""
    started = time.monotonic()
    await asyncio.to_thread(compose, "restart", "--timeout", "20", node)
    restarted = time.monotonic() - started
    address = await asyncio.to_thread(node_address, node)
    ready = partial(http_status, f"http://{address}:8080/readyz")
    await wait_for_async(lambda: ready() == 200, 60, f"{node} ready")
    # As deploy/compose.yaml says: nginx looks the node's address up again.
    await asyncio.to_thread(compose, "exec", "-T", "nginx", "nginx", "-s", "reload")
    return restarted


async def test_rolling_restart_of_every_node_is_invisible() -> None:
    """`docker compose restart` of each node in turn (SIGTERM: it drains), while peers
    signal through nginx: nobody sees another leave, ids and rooms survive."""
    peers = make_pairs(URL.replace("http://", "ws://") + "/ws", ROOMS)
    try:
        pairs = await join_pairs(peers)
        timings = []
        for i, node in enumerate(NODES):
            on_node = await asyncio.to_thread(peers_on, node)
            moved, restarted = await restart_while_chatting(
                peers, i, partial(restart, node), on_node, node, SETTLE_TIMEOUT
            )
            timings.append((node, on_node, moved, round(restarted, 1)))
        assert_nobody_noticed(pairs)
        print("\nrolling restart (node, peers on it, reconnects, restart s):", timings)
    except BaseException:
        print(compose("logs", "--tail", "40", timeout=60)[-8000:])
        raise
    finally:
        await asyncio.gather(*(p.stop() for p in peers))
