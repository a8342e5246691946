"""The sharer reloads its page in the middle of a download (or the browser discarded the
tab): the share keeps its link (kept in the tab's session storage), the receiver says what
happened and waits, and once the person adds the same file again (same name, size and
date; its hashes computed anew and checked) the download continues where it stopped, into
the same browser download, and verifies."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from tests.e2e.flows import fragment, open_link, row, saved, share, wait_for_percent
from tests.support.pages import MiB, Pages, sha256_file, write_random
from tests.support.procs import PeaNode


def test_receiver_continues_after_the_sharer_reloads(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], share_dir: Path
) -> None:
    node_a, node_b = cluster
    f = share_dir / "reload" / "again.bin"
    write_random(f, 24 * MiB)  # 24 blocks: enough to stop in the middle
    sharer = pages.new()
    sharer.on("dialog", lambda d: d.accept())  # "leave this page?" while a receiver is connected
    link = share(sharer, node_a.url, [f])
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    with receiver.expect_download() as info:
        row(receiver, "again.bin").locator("[data-testid=download]").click()
    # This page, unlike the sharer's, says before any download that a reload starts over.
    expect(receiver.locator("[data-testid=reload-note]")).to_contain_text("start over")
    wait_for_percent(receiver, "again.bin", 20)

    sharer.reload()
    expect(sharer.locator("[data-testid=restored]")).to_contain_text("the link still works")
    expect(sharer.locator("[data-testid=share-link]")).to_have_attribute("href", link)
    # The reloaded page is back on the link at once; the download waits for its file.
    detail = row(receiver, "again.bin").locator(".detail")
    expect(detail).to_contain_text("waiting for the sharer to add this file again", timeout=30000)

    sharer.locator("input[type=file]").set_input_files([str(f)])
    expect(detail).to_contain_text("resumed at", timeout=60000)
    expect(detail).to_contain_text("Saved and verified", timeout=120000)
    assert sha256_file(saved(info.value)) == sha256_file(f)
