"""`pea send` and `pea receive` with the web client, in Chromium and Firefox, through
two nodes: what one side shares, the other gets byte for byte, verified on both ends."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import download, fragment, open_link, row, share
from tests.support.cli import receive, saved, send
from tests.support.pages import MiB, Pages, sha256_file, sized, skip_in, write_random
from tests.support.procs import PeaNode

pytestmark = pytest.mark.timeout(240)


def test_cli_shares_with_a_browser(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    node_a, node_b = cluster
    big = tmp_path / "share" / "big.bin"
    small = tmp_path / "share" / "docs" / "readme.txt"
    write_random(big, sized(pages.engine, 8 * MiB, 3 * MiB) + 3)
    small.parent.mkdir(parents=True)
    small.write_text("from the terminal\n")
    sender, link = send(node_a.url, big, tmp_path / "share" / "docs", "--text", "hi from the CLI")
    try:
        page = pages.new()
        open_link(page, node_b.url + "/" + fragment(link), expect_files=2)
        expect(row(page, "readme.txt")).to_contain_text("docs/readme.txt")
        expect(page.locator(".notes .note-text")).to_have_text("hi from the CLI")
        for name, src in (("big.bin", big), ("readme.txt", small)):
            assert sha256_file(download(page, name)) == sha256_file(src), name
            expect(row(page, name)).to_contain_text("verified")
        sender.wait_event(
            lambda e: e.get("event") == "uploaded" and e["path"] == "big.bin" and e["verified"],
            30,
            "the browser's ok",
        )
    finally:
        assert sender.stop() == 0, sender.output()


def test_browser_shares_with_the_cli(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    node_a, node_b = cluster
    src = tmp_path / "from-browser.bin"
    write_random(src, sized(pages.engine, 8 * MiB, 3 * MiB) + 11)
    note = tmp_path / "n.txt"
    note.write_text("second file\n")
    sharer = pages.new()
    link = share(sharer, node_a.url, [src, note])
    r = receive(node_b.url + "/" + fragment(link), "--out", tmp_path / "out")
    assert r.wait(120) == 0, r.output()
    got = saved(r)
    assert sha256_file(tmp_path / "out" / src.name) == sha256_file(src) == got[src.name]["sha256"]
    assert (tmp_path / "out" / "n.txt").read_text() == "second file\n"


def test_a_200_mib_file_keeps_the_cli_memory_bounded(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    """Chromium shares 200 MiB; `pea receive` streams it to disk: its resident memory
    stays far below the file's size (the window is 16 MiB, plus one 1 MiB block)."""
    skip_in(
        pages.engine,
        "firefox",
        "one engine is enough for a memory bound (Firefox moves 4-11 MiB/s here)",
    )
    import psutil

    node_a, node_b = cluster
    src = tmp_path / "huge.bin"
    write_random(src, 200 * MiB)
    sharer = pages.new()
    link = share(sharer, node_a.url, [src])
    r = receive(node_b.url + "/" + fragment(link), "--out", tmp_path / "out")
    proc = psutil.Process(r.pid)
    baseline = peak = 0
    deadline = time.monotonic() + 170
    while r.proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            rss = proc.memory_info().rss
            got = [e["bytes"] for e in r.named("download")]
            if not got or got[-1] < 4 * MiB:
                baseline = max(baseline, rss)  # aiortc, av and the connection, before the bulk
            peak = max(peak, rss)
        time.sleep(0.2)
    assert r.wait(10) == 0, r.output()
    assert sha256_file(tmp_path / "out" / "huge.bin") == sha256_file(src)
    growth = peak - baseline
    print(f"pea receive RSS: baseline {baseline / MiB:.0f} MiB, peak {peak / MiB:.0f} MiB")
    assert growth < 64 * MiB, f"RSS grew by {growth / MiB:.0f} MiB for a 200 MiB file"
