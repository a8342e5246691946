"""The command-line peer in the NAT lab: `pea receive` in home b, Chromium sharing from
home a, in the lab the browser cases built (the session's `world`).

The sharer's page is the witness of what ICE did: its connection details name the pair
in use. The CLI gets its STUN server (the lab's coturn) only from the node's welcome,
so a server-reflexive candidate of its own in that pair proves it used it (behind two
filtering NATs no other direct path exists anyway).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.flows import share
from tests.nat.conftest import World
from tests.nat.lab import EIM, SYMMETRIC
from tests.nat.test_nat import FINAL_STATES, _relayed, _report, _wait_state, nats
from tests.support.pages import sha256_file
from tests.support.procs import pea_exe

CONNECT_TIMEOUT_S = 20  # signal/pea/peer/rtc.py CONNECT_TIMEOUT
SHORT_CONNECT_S = 10  # --connect-timeout where no connection can be made: bounds the wait
NO_DIRECT_EXIT = 4  # docs/cli.md: no direct connection
# The whole `pea receive` run, start to exit: Python's start, the signalling, pea's own
# bound on a connection attempt, the download; generous on a busy 2-core machine.
RUN_S = CONNECT_TIMEOUT_S + 40


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nat-cli") / "holiday.bin"
    path.write_bytes(os.urandom(384 * 1024))
    return path


def receive_in_home_b(
    world: World, link: str, out: Path, *flags: str
) -> tuple[int, float, str, list[dict[str, Any]]]:
    """`pea receive LINK` in home b: its exit code, seconds, output and JSON events."""
    argv = [pea_exe(), "receive", link, "--out", str(out), "--wait", "20", *flags]
    proc = world.lab.start("home-b", "pea-receive", argv)
    start = time.monotonic()
    try:
        rc = proc.wait(RUN_S)
    except subprocess.TimeoutExpired:
        proc.stop(5)
        pytest.fail(f"pea receive still running after {RUN_S} s:\n{proc.log_text()[-3000:]}")
    seconds = time.monotonic() - start
    output = proc.log_text()
    proc.remove_log()
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return rc, seconds, output, events


def share_from_home_a(world: World, payload: Path) -> tuple[Any, str]:
    a = world.homes["a"]
    page = a.call(lambda: a.page("chromium"))
    return page, a.call(share, page, world.direct.url, [payload])


def sharer_view(world: World, page: Any) -> tuple[str, str, str, bool]:
    def view() -> tuple[str, str, str, bool]:
        state = _wait_state(page, ".receiver", (*FINAL_STATES, "left"))
        row = " ".join(
            str(page.locator(f".receiver {part}").first.text_content())
            for part in (".meta", ".detail")
        )
        return state, row, _report(page, ".receiver"), _relayed(page, ".receiver")

    return world.homes["a"].call(view)


def finish(world: World) -> None:
    a = world.homes["a"]
    a.forget_pages()
    errors = list(a.errors)
    a.errors.clear()
    assert not errors, errors


def test_cli_behind_an_endpoint_independent_nat_receives_directly_from_a_browser(
    world: World, payload: Path, tmp_path: Path
) -> None:
    nats(world, EIM, EIM)
    page, link = share_from_home_a(world, payload)
    rc, seconds, output, events = receive_in_home_b(world, link, tmp_path, "--json")
    state, row, report, relayed = sharer_view(world, page)
    finish(world)
    print(f"pea receive: exit {rc} after {seconds:.1f} s\nsharer [{state}] {row}\n{report}")
    assert rc == 0, output
    assert sha256_file(tmp_path / payload.name) == sha256_file(payload), output
    assert [e for e in events if e["event"] == "connected"], output
    # The CLI has gone by now: the row says so, and keeps the pair it used.
    assert state in ("connected", "left") and "1 sent" in row and not relayed, row
    pair = report.split("path:")[1].split("\n")[0]
    assert pair.startswith(" direct (srflx ↔ srflx"), report


def test_cli_behind_symmetric_nats_exits_4_with_one_line_saying_no_direct_connection(
    world: World, payload: Path, tmp_path: Path
) -> None:
    nats(world, SYMMETRIC, SYMMETRIC)
    page, link = share_from_home_a(world, payload)
    rc, seconds, output, _ = receive_in_home_b(
        world, link, tmp_path, "--connect-timeout", str(SHORT_CONNECT_S)
    )
    state, row, report, _ = sharer_view(world, page)
    finish(world)
    print(f"pea receive: exit {rc} after {seconds:.1f} s\n{output}\nsharer [{state}] {row}")
    assert rc == NO_DIRECT_EXIT, output
    errors = [line for line in output.splitlines() if line.startswith("pea: error: ")]
    assert len(errors) == 1, output
    assert errors[0].startswith(
        ("pea: error: no direct path to the sharer", "pea: error: no direct connection")
    ), output
    assert errors[0].endswith("a strict NAT or firewall is in the way (pea does not relay files)")
    # A timeout names the bound this run was given, not the default.
    assert "connection to the sharer within" not in errors[0] or (
        f"within {SHORT_CONNECT_S} s" in errors[0]
    ), errors[0]
    # Within the bound given on a connection attempt, Python's start and a busy machine aside.
    assert seconds <= SHORT_CONNECT_S + 15, output
    assert not any(tmp_path.iterdir()), "nothing is written without a connection"
    # The row keeps the failure after the CLI has gone ("left").
    assert state in ("failed", "left") and "no direct connection could be made" in row, row
    assert "state: failed" in report, report
