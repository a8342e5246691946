"""When something goes wrong, the person is told what and why, on both sides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import assert_not_finished, download, fragment, open_link, row, share
from tests.e2e.relay import forge_fingerprint, tampering_relay
from tests.support.pages import MiB, Pages, sha256_file, sized, write_random
from tests.support.procs import PeaNode, RedisServer, pea_node


@pytest.fixture(scope="module")
def files(share_dir: Path, engine: str) -> Iterator[dict[str, Path]]:
    out = {"small.txt": share_dir / "f" / "small.txt", "large.bin": share_dir / "f" / "large.bin"}
    write_random(out["small.txt"], 5000)
    write_random(out["large.bin"], sized(engine, 256 * MiB, 64 * MiB))
    yield out


@pytest.mark.parametrize("direction", ["to_browser", "to_server"])
def test_altered_signalling_is_refused_on_both_sides(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path], direction: str
) -> None:
    """A relay in front of the receivers' node swaps the DTLS fingerprint in the offer it
    delivers (to_browser) or in the answer it forwards (to_server): both people see why
    nothing connects, and no file is listed."""
    node_a, node_b = cluster
    alter: dict[str, Any] = {direction: forge_fingerprint}
    with tampering_relay(node_b.url, **alter) as relay:
        sharer = pages.new()
        link = share(sharer, node_a.url, [files["small.txt"]])
        receiver = pages.new()
        receiver.goto(relay.url + "/" + fragment(link))
        status = receiver.locator("[data-testid=status]")
        expect(status).to_contain_text("tampering", timeout=20000)
        expect(status).to_contain_text("Nothing was downloaded")
        expect(sharer.locator("[role=alert]")).to_contain_text("tampering", timeout=20000)
        expect(sharer.locator(".receivers [data-state=tampered]")).to_have_count(1)
        assert relay.altered >= 1
        receiver.wait_for_timeout(500)
        expect(receiver.locator("[data-testid=file]")).to_have_count(0)


def test_sharer_leaving_mid_file_is_explained(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, list(files.values()))
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=2)
    clicked = time.time()
    with receiver.expect_download() as info:
        row(receiver, "large.bin").locator("[data-testid=download]").click()
    # The sharer hashes the file first (once, its blocks and the whole): allow for a slow CPU.
    expect(row(receiver, "large.bin")).to_contain_text("left", timeout=60000)  # "… s left"
    sharer.close()
    status = receiver.locator("[data-testid=status]")
    expect(status).to_have_text(
        "The sharer left: they closed the page or lost their network. Ask them to share again.",
        timeout=15000,
    )
    expect(row(receiver, "large.bin")).to_contain_text("in the middle of “large.bin”")
    assert_not_finished(info.value, files["large.bin"].stat().st_size, clicked)
    expect(row(receiver, "small.txt").locator("[data-testid=download]")).to_be_disabled()


def test_link_nobody_shares_says_so(pages: Pages, cluster: tuple[PeaNode, PeaNode]) -> None:
    receiver = pages.new()
    receiver.goto(cluster[1].url + "/#3.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA")
    expect(receiver.locator("[data-testid=status]")).to_contain_text(
        "Nobody is sharing on this link right now", timeout=15000
    )


def test_plain_http_lan_address_falls_back_to_memory(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    """lan.pea.test maps to 127.0.0.1 but is not a secure context, like http://192.168.x.y:
    no service worker, no crypto.subtle. Both pages are there: the sharer makes its
    Ed25519 key and signs, the receiver checks, the page says so, downloads still verify."""
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url.replace("127.0.0.1", "lan.pea.test"), [files["small.txt"]])
    assert sharer.evaluate("isSecureContext") is False
    receiver = pages.new()
    url = node_b.url.replace("127.0.0.1", "lan.pea.test") + "/" + fragment(link)
    open_link(receiver, url, expect_files=1)
    assert receiver.evaluate("isSecureContext") is False
    expect(receiver.locator(".banner.warn")).to_contain_text("plain HTTP")
    expect(receiver.locator(".banner.warn")).to_contain_text("HTTPS")
    got = download(receiver, "small.txt")
    assert sha256_file(got) == sha256_file(files["small.txt"])
    expect(row(receiver, "small.txt")).to_contain_text("verified")


def test_server_restart_does_not_stop_a_share(
    pages: Pages, redis: RedisServer, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    """The receiver's node goes down (SIGTERM: it drains and says `reconnect`): the page
    says so, files still come straight from the sharer, and when the node is back the
    page rejoins with its resume token, unnoticed by the sharer."""
    node_a, _ = cluster
    with pea_node(redis_url=redis.url, ice_servers="[]") as node_c:
        sharer = pages.new()
        link = share(sharer, node_a.url, [files["small.txt"]])
        receiver = pages.new()
        open_link(receiver, node_c.url + "/" + fragment(link), expect_files=1)
        node_c.stop()
        status = receiver.locator("[data-testid=status]")
        expect(status).to_contain_text("server is unreachable", timeout=15000)
        expect(status).to_contain_text("the direct connection keeps working")
        assert sha256_file(download(receiver, "small.txt")) == sha256_file(files["small.txt"])
        node_c.start()
        expect(status).to_have_text("Connected to the sharer.", timeout=30000)
        expect(sharer.locator("[data-testid=status]")).to_contain_text("Sharing with 1 receiver")
        expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(1)


# On the sharer's side, after it has hashed the file: flips one bit in the first file
# chunk of the first `get` channel (ONCE) or of every one (ALWAYS): damage in transit.
CORRUPT_FIRST_CHUNK = """
const send = RTCDataChannel.prototype.send;
const seen = new WeakSet();
window.__peaFlips = 0;
RTCDataChannel.prototype.send = function (data) {
  const first = this.label === "get" && typeof data !== "string" && !seen.has(this);
  if (first && (ALWAYS || !window.__peaFlips)) {
    seen.add(this);
    window.__peaFlips++;
    const copy = new Uint8Array(data.byteLength);
    copy.set(new Uint8Array(data.buffer || data, data.byteOffset || 0, data.byteLength));
    copy[copy.length >> 1] ^= 1;
    return send.call(this, copy);
  }
  if (this.label === "get" && typeof data !== "string") seen.add(this);
  return send.call(this, data);
};
"""


def test_a_damaged_block_is_fetched_again(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    """One block arrives damaged (its hash is not the one announced): the receiver asks for
    that block again instead of failing, and the file is saved and verified."""
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.context.add_init_script("const ALWAYS = false;" + CORRUPT_FIRST_CHUNK)
    link = share(sharer, node_a.url, [files["small.txt"]])
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    assert sha256_file(download(receiver, "small.txt")) == sha256_file(files["small.txt"])
    expect(row(receiver, "small.txt")).to_contain_text("Saved and verified")
    assert sharer.evaluate("window.__peaFlips") == 1


def test_a_block_damaged_every_time_fails_loudly(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    """A block that fails its check on every re-fetch (the sharer's file is changing, its
    disk failing): after the bounded re-fetches the download fails, says why, and the
    browser's download is not completed."""
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.context.add_init_script("const ALWAYS = true;" + CORRUPT_FIRST_CHUNK)
    link = share(sharer, node_a.url, [files["small.txt"]])
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    clicked = time.time()
    with receiver.expect_download() as info:
        row(receiver, "small.txt").locator("[data-testid=download]").click()
    expect(row(receiver, "small.txt")).to_contain_text("arrived damaged four times", timeout=15000)
    assert_not_finished(info.value, files["small.txt"].stat().st_size, clicked)
    assert sharer.evaluate("window.__peaFlips") == 4


def test_no_direct_route_is_explained(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], files: dict[str, Path]
) -> None:
    """No path exists between the two, as behind a strict NAT (Chromium without media
    permission offers no loopback candidate; Firefox here has loopback ICE off): the page
    says so, why, and what to try, in words true for how the attempt ended."""
    node_a, node_b = cluster
    sharer = pages.new(grant=False)
    link = share(sharer, node_a.url, [files["small.txt"]])
    receiver = pages.new(grant=False)
    receiver.goto(node_b.url + "/" + fragment(link))
    status = receiver.locator("[data-testid=status]")
    expect(status).to_contain_text("No direct connection to the sharer", timeout=30000)
    expect(status).to_contain_text("TURN is off by design")
    receivers = sharer.locator(".receivers")
    expect(receivers).to_contain_text("no direct connection could be made")
    # The words match what happened: Firefox gives up at once where no path exists (its ICE
    # fails within seconds); Chromium, offering no candidate at all, waits out pea's bound.
    if pages.engine == "firefox":
        expect(status).to_contain_text("found no network path")
        expect(status).not_to_contain_text("20 s")
        expect(receivers).not_to_contain_text("20 s")
    else:
        expect(status).to_contain_text("nothing answered within 20 s")
        expect(receivers).to_contain_text("within 20 s")
