"""Downloads that survive the network (transfer protocol v3, §3.5): each browser runs in
a network namespace of its own, joined to the nodes' namespace by a veth pair, and the
test breaks the receiver's network for real, in the middle of a download. The download
continues from the last verified block into the same browser download, its SHA-256
matches, and the sharer sends little more than the file.

Chromium only: Playwright drives Firefox over a WebSocket to its loopback, which a
browser in another namespace does not share (Firefox's resume logic is the same page
code, covered by web/test/receive.test.js and the damaged-block tests in both engines).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import fragment, row, saved
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.netlab import SERVER_ADDRESS, Host, Lab, lab, namespaces_supported
from tests.support.pages import MiB, Pages, sha256_file, write_random
from tests.support.procs import PeaNode, node_env

SIZE = 200 * MiB
BLOCK = MiB  # docs/transfer-protocol.md §3.2
DOWN_S = 8  # the link is down this long: longer than pea's 4 s + ICE's own "disconnected" delay

# Counts the file bytes the sharer's page hands to its data channels, minus what was still
# in a channel's own buffer when it closed (never sent): the bytes it really sent.
COUNT_SENT = """
window.__peaSent = 0;
const send = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (this.label === "get" && typeof data !== "string") {
    window.__peaSent += data.byteLength;
    if (!this.__peaCounted) {
      this.__peaCounted = true;
      this.addEventListener("close", () => { window.__peaSent -= this.bufferedAmount; });
    }
  }
  return send.call(this, data);
};
"""


@pytest.fixture(scope="module")
def big_file(share_dir: Path) -> Path:
    path = share_dir / "resume" / "big.bin"
    write_random(path, SIZE)
    return path


@pytest.fixture
def net(engine: str) -> Iterator[Lab]:
    if engine != "chromium":
        pytest.skip("firefox: Playwright cannot reach a Firefox in another network namespace")
    why = namespaces_supported()
    if why or CHROMIUM is None:
        pytest.skip(why or "Debian chromium is not installed")
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


def open_in(pages: Pages, net: Lab, host: Host, origin: str) -> Any:
    """A page of a Chromium that lives in `host`'s namespace, with that origin secure (as
    HTTPS would be), so downloads stream through the service worker."""
    assert CHROMIUM is not None  # the `net` fixture skipped otherwise
    browser = pages.browsers.pw.chromium.launch(
        executable_path=host.wrapper(CHROMIUM, net.folder),
        args=[*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}"],
        downloads_path=str(net.folder),
        timeout=30000,
    )
    net_browsers.append(browser)
    ctx = browser.new_context(accept_downloads=True)
    ctx.grant_permissions(["microphone"])  # without it Chromium gathers no candidate
    ctx.set_default_timeout(30000)
    page = ctx.new_page()
    page.on("pageerror", lambda e: pages.errors.append(f"{page.url}: {e}"))
    return page


net_browsers: list[Any] = []


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    yield
    while net_browsers:
        net_browsers.pop().close()


def start_download(
    pages: Pages, net: Lab, node: PeaNode, big_file: Path
) -> tuple[Any, Any, Any, Host]:
    """Sharer and receiver each in a namespace; the receiver starts downloading the file.
    Returns (sharer page, receiver page, the browser's download, the receiver's host)."""
    origin = f"http://{SERVER_ADDRESS}:{node.port}"
    sharer_host = net.add_host("sharer")
    receiver_host = net.add_host("receiver")
    sharer = open_in(pages, net, sharer_host, origin)
    sharer.context.add_init_script(COUNT_SENT)
    sharer.goto(origin + "/")
    sharer.locator("input[type=file]").set_input_files([str(big_file)])
    link = sharer.locator("[data-testid=share-link]").get_attribute("href")
    assert link
    receiver = open_in(pages, net, receiver_host, origin)
    receiver.goto(origin + "/" + fragment(link))
    expect(receiver.locator("[data-testid=status]")).to_have_text(
        "Connected to the sharer.", timeout=30000
    )
    with receiver.expect_download(timeout=60000) as info:
        row(receiver, "big.bin").locator("[data-testid=download]").click()
    return sharer, receiver, info.value, receiver_host


def received(receiver: Any) -> float:
    text = row(receiver, "big.bin").locator(".detail").inner_text()
    return float(text.split("%")[0]) if "%" in text else 0.0


def wait_until_received(receiver: Any, percent: float, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while received(receiver) < percent:
        assert time.monotonic() < deadline, f"stuck at {received(receiver)} %"
        time.sleep(0.2)


def finish_and_check(sharer: Any, receiver: Any, download: Any, big_file: Path) -> None:
    detail = row(receiver, "big.bin").locator(".detail")
    expect(detail).to_contain_text("resumed at", timeout=90000)
    expect(detail).to_contain_text("Saved and verified", timeout=180000)
    assert sha256_file(saved(download)) == sha256_file(big_file)
    sent = sharer.evaluate("window.__peaSent")
    resumed_at = detail.inner_text()
    print(f"sharer sent {sent - SIZE} bytes beyond the file; {resumed_at}")
    # One resume: at most the block that was incomplete is sent again.
    assert sent <= SIZE + BLOCK, f"the sharer sent {sent - SIZE} bytes more than the file"


def test_download_survives_link_down(pages: Pages, net: Lab, node: PeaNode, big_file: Path) -> None:
    """The receiver's link goes down for 8 s in the middle of the download, then comes back."""
    sharer, receiver, download, host = start_download(pages, net, node, big_file)
    wait_until_received(receiver, 30)
    net.set_link(host, up=False)
    status = receiver.locator("[data-testid=status]")
    expect(status).to_contain_text("Reconnecting", timeout=20000)
    expect(row(receiver, "big.bin").locator(".detail")).to_contain_text("Paused at")
    time.sleep(DOWN_S)
    net.set_link(host, up=True)
    finish_and_check(sharer, receiver, download, big_file)


def test_download_survives_address_change(
    pages: Pages, net: Lab, node: PeaNode, big_file: Path
) -> None:
    """The receiver moves to another network in the middle of the download: a new link with
    a new address, the old one removed (a laptop leaving one Wi-Fi for another)."""
    sharer, receiver, download, host = start_download(pages, net, node, big_file)
    wait_until_received(receiver, 30)
    net.move(host)
    finish_and_check(sharer, receiver, download, big_file)
