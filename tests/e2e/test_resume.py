"""Downloads that survive the network (transfer protocol v3, §3.5): each browser runs in
a network namespace of its own, joined to the nodes' namespace by a veth pair, and the
test breaks the receiver's network for real, in the middle of a download. The download
continues from the last verified block into the same browser download, its SHA-256
matches, and the sharer sends little more than the file.

Per engine, the receiver (whose page pauses, reconnects and resumes the download) runs
in that engine; the sharer always runs in Chromium, so the Firefox case is also a
cross-engine one and costs one Firefox launch only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import fragment, row, saved, wait_for_percent
from tests.support.browser import HIDE_FILE_PICKERS, executable
from tests.support.netlab import SERVER_ADDRESS, Host, Lab, lab, namespaces_supported
from tests.support.nsbrowser import NamespaceBrowsers
from tests.support.pages import COUNT_SENT, FIREFOX_NOISE, MiB, Pages, sha256_file, write_random
from tests.support.procs import PeaNode, node_env

# Firefox moves 4-11 MiB/s here: a smaller file keeps its case within its CI time.
SIZES = {"chromium": 200 * MiB, "firefox": 64 * MiB}
BLOCK = MiB  # docs/transfer-protocol.md §3.2
DOWN_S = 8  # the link is down this long: longer than pea's 4 s + ICE's own "disconnected" delay


@pytest.fixture
def big_file(share_dir: Path, engine: str) -> Path:
    path = share_dir / "resume" / engine / "big.bin"
    write_random(path, SIZES[engine])
    return path


@pytest.fixture
def net(engine: str) -> Iterator[Lab]:
    why = namespaces_supported()
    missing = [e for e in {"chromium", engine} if executable(e) is None]
    if why or missing:
        pytest.skip(why or f"not installed: {', '.join(missing)} (make system-deps)")
    with lab("resume") as the_lab:
        yield the_lab


@pytest.fixture
def node(net: Lab) -> Iterator[PeaNode]:
    """One node on the address both namespaces reach (an in-memory bus: one node is enough)."""
    n = PeaNode(env=node_env(ice_servers="[]"), args=["--host", "0.0.0.0"])
    try:
        n.start()
        yield n
    finally:
        n.stop()
        n.remove_log()


@pytest.fixture
def ns_browsers(pages: Pages, net: Lab) -> Iterator[NamespaceBrowsers]:
    nsb = NamespaceBrowsers(pages.browsers.pw, net.folder)
    try:
        yield nsb
    finally:
        nsb.close()


def open_in(pages: Pages, nsb: NamespaceBrowsers, engine: str, host: Host, origin: str) -> Any:
    """A page of a browser that lives in `host`'s namespace, with that origin secure (as
    HTTPS would be), so downloads stream through the service worker."""
    ctx = nsb.launch(engine, host, origin).new_context(accept_downloads=True)
    if engine == "chromium":
        ctx.grant_permissions(["microphone"])  # without it Chromium gathers no candidate
    ctx.set_default_timeout(30000)
    ctx.add_init_script(HIDE_FILE_PICKERS)  # the browser download, through the service worker
    page = ctx.new_page()
    noise = FIREFOX_NOISE if engine == "firefox" else None

    def on_error(e: Any) -> None:
        if not (noise and noise.search(str(e))):
            pages.errors.append(f"{page.url}: {e}")

    page.on("pageerror", on_error)
    return page


def start_download(
    pages: Pages, nsb: NamespaceBrowsers, net: Lab, node: PeaNode, big_file: Path
) -> tuple[Any, Any, Any, Host]:
    """Sharer and receiver each in a namespace; the receiver starts downloading the file.
    Returns (sharer page, receiver page, the browser's download, the receiver's host)."""
    origin = f"http://{SERVER_ADDRESS}:{node.port}"
    sharer_host = net.add_host("sharer")
    receiver_host = net.add_host("receiver")
    sharer = open_in(pages, nsb, "chromium", sharer_host, origin)
    sharer.context.add_init_script(COUNT_SENT)
    sharer.goto(origin + "/")
    sharer.locator("input[type=file]").set_input_files([str(big_file)])
    link = sharer.locator("[data-testid=share-link]").get_attribute("href")
    assert link
    receiver = open_in(pages, nsb, pages.engine, receiver_host, origin)
    receiver.goto(origin + "/" + fragment(link))
    expect(receiver.locator("[data-testid=status]")).to_have_text(
        "Connected to the sharer.", timeout=30000
    )
    with receiver.expect_download(timeout=60000) as info:
        row(receiver, "big.bin").locator("[data-testid=download]").click()
    return sharer, receiver, info.value, receiver_host


def test_download_survives_link_down_then_address_change(
    pages: Pages, ns_browsers: NamespaceBrowsers, net: Lab, node: PeaNode, big_file: Path
) -> None:
    """In one download of 200 MiB (64 in Firefox; one download for both faults keeps CI
    time down): the receiver's link goes down for 8 s, then comes back; later the receiver
    moves to another network (a new link with a new address, the old one removed, as a
    laptop leaving one Wi-Fi for another). Each time the download says it is paused,
    resumes where it was, and in the end the file verifies and the sharer sent at most one
    block more per resume."""
    sharer, receiver, download, host = start_download(pages, ns_browsers, net, node, big_file)
    detail = row(receiver, "big.bin").locator(".detail")
    status = receiver.locator("[data-testid=status]")

    wait_for_percent(receiver, "big.bin", 25)
    net.set_link(host, up=False)
    expect(status).to_contain_text("Reconnecting", timeout=20000)
    expect(detail).to_contain_text("Paused at")
    time.sleep(DOWN_S)
    net.set_link(host, up=True)
    expect(detail).to_contain_text("resumed at", timeout=90000)

    wait_for_percent(receiver, "big.bin", 60, timeout_s=180)
    net.move(host)
    expect(detail).to_contain_text("Paused at", timeout=30000)
    expect(detail).to_contain_text("resumed at", timeout=90000)  # the second resume

    expect(detail).to_contain_text("Saved and verified", timeout=240000)
    assert sha256_file(saved(download)) == sha256_file(big_file)
    size = big_file.stat().st_size
    sent = sharer.evaluate("window.__peaSent")
    print(f"sharer sent {sent - size} bytes beyond the file over two resumes")
    assert sent <= size + 2 * BLOCK, f"the sharer sent {sent - size} bytes more than the file"
