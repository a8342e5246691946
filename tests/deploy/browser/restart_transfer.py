"""One real browser transfer through nginx while every node restarts.

Not collected by `pytest tests/deploy` (no test_ prefix): test_browser_restart.py
runs it inside a loopback-only network namespace, with the browser fixtures of
tests/e2e/conftest.py loaded as a plugin (`-p tests.e2e.conftest`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from deploy.cluster.run import Cluster, cluster
from tests.e2e.flows import fragment, open_link, row, saved, share
from tests.support.pages import MiB, Pages, sha256_file, write_random

SIZE = 128 * MiB


@pytest.fixture(scope="module")
def three() -> Iterator[Cluster]:
    # No STUN inside the namespace: host candidates on loopback only.
    with cluster(nodes=3, drain_timeout=5, extra_env={"PEA_ICE_SERVERS": "[]"}) as c:
        yield c


def rolling_restart(c: Cluster, done: list[str]) -> None:
    """In a thread, so the download goes on meanwhile (nodes spawned here outlive it)."""
    for node in c.nodes:
        node.restart(c.drain_timeout)
        done.append(node.name)


def test_transfer_survives_a_rolling_restart(pages: Pages, three: Cluster, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    write_random(src, SIZE)
    sharer = pages.new()
    link = share(sharer, three.url, [src])
    receiver = pages.new()
    open_link(receiver, three.url + "/" + fragment(link), expect_files=1)

    # Restart every node (each drains: `reconnect`, 1012) while the file flows.
    done: list[str] = []
    with receiver.expect_download(timeout=120_000) as dl:
        row(receiver, "big.bin").locator("[data-testid=download]").click()
        restarts = threading.Thread(target=rolling_restart, args=(three, done))
        restarts.start()
        path = saved(dl.value)
        during = list(done)
    restarts.join(60)
    assert during, "the download ended before any node restarted: use a bigger file"
    assert not restarts.is_alive() and done == ["pea1", "pea2", "pea3"], done
    assert sha256_file(path) == sha256_file(src)
    expect(row(receiver, "big.bin")).to_contain_text("verified")

    # Signalling still works for both after the restarts: a second receiver finds
    # the sharer (who resumed in its room) and the sharer counts it.
    late = pages.new()
    logs: list[str] = []
    sharer.on("console", lambda m: logs.append(f"sharer: {m.text}"))
    late.on("console", lambda m: logs.append(f"late: {m.text}"))
    try:
        open_link(late, three.url + "/" + fragment(link), expect_files=1)
    except AssertionError:
        status = sharer.locator("body").inner_text(timeout=5000)
        late_status = late.locator("body").inner_text(timeout=5000)
        raise AssertionError(
            f"sharer: {status!r}; late receiver: {late_status!r}\n"
            + "\n".join(logs[-40:])
            + "\n"
            + three.logs()[-5000:]
        ) from None
    expect(sharer.locator("[data-testid=status]")).to_contain_text("2 receivers")
