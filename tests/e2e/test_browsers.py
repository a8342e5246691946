"""Every pairing of engines shares files, and a browser that cannot take part is told so at
once, with what to use instead, on both pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.flows import TIMEOUT_MS, download, fragment, open_link, row, share
from tests.support.browser import ENGINES
from tests.support.pages import MiB, Pages, sha256_file, write_random
from tests.support.procs import PeaNode

LINK = "/#3.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture(scope="module")
def pair_files(share_dir: Path) -> Iterator[dict[str, Path]]:
    out = {"pair-small.txt": 4321, "pair-multi.bin": 6 * MiB + 12345}
    paths = {name: share_dir / "pairs" / name for name in out}
    for name, size in out.items():
        write_random(paths[name], size)
    yield paths


@pytest.mark.parametrize("receiver_engine", ENGINES)
def test_every_pairing_of_engines_shares(
    pages: Pages,
    cluster: tuple[PeaNode, PeaNode],
    pair_files: dict[str, Path],
    engine: str,
    receiver_engine: str,
) -> None:
    """The sharer in `engine`, the receiver in `receiver_engine`, each on its own node:
    every file arrives byte for byte (SHA-256 checked here, and by the page)."""
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, list(pair_files.values()))
    receiver = pages.new(engine=receiver_engine)
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=len(pair_files))
    for name, src in pair_files.items():
        assert sha256_file(download(receiver, name)) == sha256_file(src), name
        expect(row(receiver, name)).to_contain_text("Saved and verified")
    expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(1)


# What a browser without WebRTC, data channels or secure random numbers looks like.
TAKE_AWAY = {
    "no-webrtc": """
        for (const k of ["RTCPeerConnection", "webkitRTCPeerConnection", "mozRTCPeerConnection"])
          delete window[k];
    """,
    "no-datachannel": """
        RTCPeerConnection.prototype.createDataChannel = function () {
          throw new DOMException("blocked", "NotSupportedError");
        };
    """,
    "no-random": "delete Crypto.prototype.getRandomValues;",
}
SAYS = {
    "no-webrtc": "has no WebRTC",
    "no-datachannel": "cannot open data channels",
    "no-random": "cannot make secure random numbers",
}


def assert_told(page: Page, says: str, role: str) -> None:
    status = page.locator("[data-testid=status]")
    # At once: well before any connection attempt could have timed out.
    expect(status).to_contain_text(says, timeout=5000)
    expect(status).to_have_attribute("data-state", "unsupported")
    nothing = "Nothing was shared" if role == "sharer" else "Nothing was downloaded"
    expect(status).to_contain_text(nothing)
    expect(page.locator("[data-testid=instead]")).to_contain_text("Firefox, Chrome, Edge or Safari")
    assert page.locator("input[type=file]").count() == 0, "a page that cannot share offers a picker"


@pytest.mark.parametrize("missing", list(TAKE_AWAY))
def test_browser_that_cannot_take_part_is_told_at_once(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], missing: str
) -> None:
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.context.add_init_script(TAKE_AWAY[missing])
    sharer.goto(node_a.url + "/")
    assert_told(sharer, SAYS[missing], "sharer")

    receiver = pages.new()
    receiver.context.add_init_script(TAKE_AWAY[missing])
    sockets: list[str] = []
    receiver.on("websocket", lambda ws: sockets.append(ws.url))
    receiver.goto(node_b.url + LINK)
    assert_told(receiver, SAYS[missing], "receiver")
    assert sockets == [], "a page that cannot receive contacted the server"


def test_firefox_with_webrtc_switched_off_is_told(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], pair_files: dict[str, Path]
) -> None:
    """Firefox with media.peerconnection.enabled off (hardened profiles, Tor Browser), as a
    sharer and as a receiver of a real share made in a browser that has WebRTC."""
    node_a, node_b = cluster
    off = pages.new(engine="firefox", variant="nowebrtc")
    assert off.evaluate("typeof RTCPeerConnection") == "undefined"
    off.goto(node_a.url + "/")
    assert_told(off, SAYS["no-webrtc"], "sharer")

    sharer = pages.new()
    link = share(sharer, node_a.url, [pair_files["pair-small.txt"]])
    receiver = pages.new(engine="firefox", variant="nowebrtc")
    receiver.goto(node_b.url + "/" + fragment(link))
    assert_told(receiver, SAYS["no-webrtc"], "receiver")
    expect(sharer.locator("[data-testid=status]")).to_contain_text("waiting for someone")


NO_SERVICE_WORKER = "delete Navigator.prototype.serviceWorker;"
SMALL_STORAGE = """
if (self.StorageManager)
  StorageManager.prototype.estimate = async () => ({ quota: 8 * 1048576, usage: 3 * 1048576 });
"""


def test_no_service_worker_falls_back_to_memory_with_its_limit(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], pair_files: dict[str, Path]
) -> None:
    """As in a Firefox private window: no service workers. The page says downloads are kept
    in memory and up to what size (here the storage estimate, 5 MiB free, is the bound);
    a file beyond it is flagged before anyone clicks, a small one still arrives verified."""
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, list(pair_files.values()))
    receiver = pages.new()
    receiver.context.add_init_script(NO_SERVICE_WORKER + SMALL_STORAGE)
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=2)
    memory = receiver.locator("[data-testid=memory-mode]")
    expect(memory).to_contain_text("no service workers")
    expect(memory).to_contain_text("Files up to about 5.2 MB should work")
    expect(memory).to_contain_text("normal window")
    expect(row(receiver, "pair-multi.bin")).to_contain_text("Too large for this browser")
    expect(row(receiver, "pair-small.txt")).not_to_contain_text("Too large")
    got = download(receiver, "pair-small.txt")
    assert sha256_file(got) == sha256_file(pair_files["pair-small.txt"])
    expect(row(receiver, "pair-small.txt")).to_contain_text(
        "Saved and verified", timeout=TIMEOUT_MS
    )


# The API is there but registering fails, as in some private windows and hardened profiles.
FAILING_REGISTRATION = """
if (self.ServiceWorkerContainer)
  ServiceWorkerContainer.prototype.register = () =>
    Promise.reject(new DOMException("registration refused by a test", "SecurityError"));
"""


def test_a_service_worker_that_fails_to_register_shows_the_memory_warning(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], pair_files: dict[str, Path]
) -> None:
    """navigator.serviceWorker exists, so the page first expects to stream; when registering
    fails it must still say that downloads are kept in memory (download.js has the last
    word, not a guess in main.js), and a file still arrives verified."""
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, list(pair_files.values()))
    receiver = pages.new()
    receiver.context.add_init_script(FAILING_REGISTRATION + SMALL_STORAGE)
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=2)
    memory = receiver.locator("[data-testid=memory-mode]")
    expect(memory).to_contain_text("kept in memory", timeout=TIMEOUT_MS)
    expect(memory).to_contain_text("Files up to about 5.2 MB should work")
    expect(row(receiver, "pair-multi.bin")).to_contain_text("Too large for this browser")
    got = download(receiver, "pair-small.txt")
    assert sha256_file(got) == sha256_file(pair_files["pair-small.txt"])
    expect(row(receiver, "pair-small.txt")).to_contain_text(
        "Saved and verified", timeout=TIMEOUT_MS
    )
