"""Did it connect? Two browsers in two homes behind simulated NATs, through pea.

Each case sets the routers' NAT behaviour, shares a file from home a and opens the
link in home b, then checks what a person sees on both pages and what the node
counted. The results fill the connectivity table in docs/connectivity.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.flows import download, fragment, share
from tests.nat.conftest import Node, World
from tests.nat.lab import EIM, SYMMETRIC, run
from tests.support.pages import sha256_file

# Seconds from opening the link to the page's verdict: pea's own bound (20 s) plus the
# time to load the page and join, generous on a shared 2-core machine.
VERDICT_S = 45
FINAL_STATES = ("connected", "no-route", "lost", "failed", "sharer-left", "tampered")
CONNECT_TIMEOUT_S = 20  # web/src/peer.js CONNECT_TIMEOUT_MS
NO_PATH_TRY = "Try both devices on the same network, or another network such as a phone hotspot."


@dataclass
class Seen:
    """What both pages showed, and what the node counted, for one attempt."""

    receiver_state: str
    receiver_status: str
    receiver_report: str
    receiver_relayed: bool
    sharer_state: str
    sharer_row: str
    sharer_report: str
    sharer_relayed: bool
    seconds: float
    """From opening the link to the receiver page's verdict."""
    trying: float
    """From the receiver page saying it connects to the sharer to its verdict."""
    verified: bool | None
    counted: dict[str, float]

    def __str__(self) -> str:
        return (
            f"receiver [{self.receiver_state}] {self.receiver_status}\n{self.receiver_report}\n"
            f"sharer [{self.sharer_state}] {self.sharer_row}\n{self.sharer_report}\n"
            f"{self.seconds:.1f} s ({self.trying:.1f} s connecting); node counted {self.counted}"
        )


def counted(world: World, node: Node) -> dict[str, float]:
    got = world.lab.get("inet", node.metrics_url)
    assert got is not None and got[0] == 200
    return {
        line.split(" ")[0].removeprefix("pea_peer_connections_total"): float(line.split(" ")[1])
        for line in got[1].splitlines()
        if line.startswith("pea_peer_connections_total{")
    }


def _wait_state(page: Page, selector: str, states: tuple[str, ...] = FINAL_STATES) -> str:
    page.wait_for_function(
        """([sel, states]) => states.includes(document.querySelector(sel)?.dataset.state)""",
        arg=[selector, list(states)],
        timeout=VERDICT_S * 1000,
    )
    return str(page.locator(selector).first.get_attribute("data-state"))


def _report(page: Page, scope: str) -> str:
    return str(page.locator(f"{scope} [data-testid=connection-report]").first.text_content())


def _relayed(page: Page, scope: str) -> bool:
    return bool(page.locator(f"{scope} [data-testid=relayed]").first.is_visible())


def attempt(
    world: World,
    node: Node,
    payload: Path,
    sharer_engine: str = "chromium",
    receiver_engine: str = "firefox",
) -> Seen:
    """Share `payload` from one home, open the link in the other; download it if connected.

    Chromium lives in home a and Firefox in home b, so the whole lab starts two browsers."""
    homes = {"chromium": world.homes["a"], "firefox": world.homes["b"]}
    a, b = homes[sharer_engine], homes[receiver_engine]
    assert a is not b
    before = counted(world, node)
    pages: dict[str, Page] = {}

    def share_it() -> str:
        pages["sharer"] = a.page(sharer_engine)
        return share(pages["sharer"], node.url, [payload])

    link = a.call(share_it)

    def receive_it() -> tuple[str, str, str, bool, float, float, bool | None]:
        page = pages["receiver"] = b.page(receiver_engine)
        start = time.monotonic()
        page.goto(node.url + "/" + fragment(link))
        _wait_state(page, "[data-testid=status]", ("connecting-peer", *FINAL_STATES))
        trying = time.monotonic()
        state = _wait_state(page, "[data-testid=status]")
        seconds = time.monotonic() - start
        trying = time.monotonic() - trying
        verified = None
        if state == "connected":
            expect(page.locator("[data-testid=file]")).to_have_count(1, timeout=30000)
            verified = sha256_file(download(page, payload.name)) == sha256_file(payload)
        status = str(page.locator("[data-testid=status]").text_content())
        return state, status, _report(page, ""), _relayed(page, ""), seconds, trying, verified

    r_state, r_status, r_report, r_relayed, seconds, trying, verified = b.call(receive_it)

    def sharer_view() -> tuple[str, str, str, bool]:
        page = pages["sharer"]
        state = _wait_state(page, ".receiver")
        row = " ".join(
            str(page.locator(f".receiver {part}").first.text_content())
            for part in (".meta", ".detail")
        )
        return state, row, _report(page, ".receiver"), _relayed(page, ".receiver")

    s_state, s_row, s_report, s_relayed = a.call(sharer_view)
    # Outcomes travel over the signalling socket: give them a moment to be counted.
    deadline = time.monotonic() + 5
    after = counted(world, node)
    while after == before and time.monotonic() < deadline:
        time.sleep(0.2)
        after = counted(world, node)
    a.forget_pages()
    b.forget_pages()
    new = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    errors = a.errors + b.errors
    a.errors.clear()
    b.errors.clear()
    assert not errors, errors
    seen = Seen(r_state, r_status, r_report, r_relayed, s_state, s_row, s_report, s_relayed,
                seconds, trying, verified, new)  # fmt: skip
    print(seen)  # the lab's measurements, for the connectivity table
    return seen


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nat") / "holiday.bin"
    path.write_bytes(os.urandom(384 * 1024))
    return path


def nats(world: World, a: str, b: str) -> None:
    """Home a (Chromium) behind NAT behaviour `a`, home b (Firefox) behind `b`."""
    world.lab.share_nat(False)
    world.lab.set_nat("a", a)
    world.lab.set_nat("b", b)


def assert_direct(seen: Seen) -> None:
    assert seen.receiver_state == "connected", seen
    assert seen.verified, f"the file arrived altered\n{seen}"
    assert seen.sharer_state == "connected", seen
    assert not seen.receiver_relayed and not seen.sharer_relayed, seen
    for report in (seen.receiver_report, seen.sharer_report):
        assert "path: direct" in report, seen
        # Through two NATs, a peer's address is only ever the one its router gave it.
        assert "srflx" in report.split("path:")[1].split("\n")[0] or "prflx" in report, seen
    connected = {k: v for k, v in seen.counted.items() if 'result="connected"' in k}
    assert sum(connected.values()) == 2, f"each side reports once\n{seen}"
    assert not any('"relay"' in k for k in connected), seen


def assert_no_direct_path(seen: Seen) -> None:
    assert seen.receiver_state == "no-route", seen
    assert "No direct connection to the sharer" in seen.receiver_status, seen
    assert "TURN is off by design" in seen.receiver_status, seen
    assert NO_PATH_TRY in seen.receiver_status, seen
    assert seen.sharer_state == "failed", seen
    assert "no direct connection could be made" in seen.sharer_row, seen
    assert NO_PATH_TRY in seen.sharer_row, seen
    # Within pea's own bound on a connection attempt (polling and a busy machine aside).
    assert seen.trying <= CONNECT_TIMEOUT_S + 5, seen
    for report in (seen.receiver_report, seen.sharer_report):
        assert "state: failed" in report and "srflx" in report, seen
    failed = {k: v for k, v in seen.counted.items() if 'result="failed"' in k}
    assert sum(failed.values()) == 2, f"each side reports once\n{seen}"


@pytest.mark.parametrize(
    ("sharer_engine", "receiver_engine"), [("chromium", "firefox"), ("firefox", "chromium")]
)
def test_endpoint_independent_nats_connect_directly_and_the_file_arrives(
    world: World, payload: Path, sharer_engine: str, receiver_engine: str
) -> None:
    nats(world, EIM, EIM)
    assert_direct(attempt(world, world.direct, payload, sharer_engine, receiver_engine))


def test_symmetric_nats_fail_and_both_pages_say_there_is_no_direct_path(
    world: World, payload: Path
) -> None:
    nats(world, SYMMETRIC, SYMMETRIC)
    assert_no_direct_path(attempt(world, world.direct, payload))


def test_one_symmetric_nat_against_a_port_restricted_one_fails_as_ice_predicts(
    world: World, payload: Path
) -> None:
    """The endpoint-independent router filters by address and port (it drops what its
    home did not send to): the symmetric side's checks come from ports it never saw."""
    nats(world, EIM, SYMMETRIC)
    assert_no_direct_path(attempt(world, world.direct, payload))


def test_two_homes_behind_one_nat_without_hairpinning_find_no_direct_path(
    world: World, payload: Path
) -> None:
    """Two customers of one carrier NAT: their networks do not reach each other, and
    Linux's MASQUERADE (like many carrier NATs) does not hairpin."""
    world.lab.set_nat("a", EIM)
    world.lab.share_nat(True)
    try:
        assert_no_direct_path(attempt(world, world.direct, payload))
    finally:
        world.lab.share_nat(False)


def test_with_turn_on_symmetric_nats_connect_through_the_relay_and_both_pages_say_so(
    world: World, payload: Path
) -> None:
    nats(world, SYMMETRIC, SYMMETRIC)
    seen = attempt(world, world.relay, payload)
    assert seen.receiver_state == "connected", seen
    assert seen.verified, seen
    assert seen.receiver_relayed and seen.sharer_relayed, f"no 'relayed' badge\n{seen}"
    for report in (seen.receiver_report, seen.sharer_report):
        assert "path: relayed through the TURN server (still end-to-end encrypted)" in report
    assert any('"relay"' in k and 'result="connected"' in k for k in seen.counted), seen


def test_with_no_udp_out_turn_over_tcp_still_connects_through_the_relay(
    world: World, payload: Path
) -> None:
    """Where the network lets no UDP out, nothing direct can work; a node that hands out
    TURN over TCP gets both pages connected through the relay all the same."""
    nats(world, EIM, EIM)
    world.lab.block_udp(True)
    try:
        seen = attempt(world, world.relay_tcp, payload)
    finally:
        world.lab.block_udp(False)
    assert seen.receiver_state == "connected", seen
    assert seen.verified, seen
    assert seen.receiver_relayed and seen.sharer_relayed, f"no 'relayed' badge\n{seen}"
    for report in (seen.receiver_report, seen.sharer_report):
        assert "path: relayed through the TURN server (still end-to-end encrypted)" in report
    # Each page names the protocol of its leg to the relay: TCP, the only one out.
    for report in (seen.receiver_report, seen.sharer_report):
        assert report.split("path:")[1].split("\n")[0].endswith(", tcp)"), seen


def test_the_lab_reaches_nothing_outside_itself(world: World) -> None:
    """The lab's internet has no default route: nothing in it can reach a real network."""
    assert run("ip", "route", "show", "default", ns=world.lab.ns("inet")).strip() == ""
    for side in ("a", "b"):
        assert "203.0.113.1" in run(
            "ip", "route", "show", "default", ns=world.lab.ns(f"nat-{side}")
        )
