"""The receiver's page is reloaded (or its tab discarded) in the middle of a download.

Where the browser lets the page write to a file the person chose (File System Access,
Chromium), the download goes into that file; reopening the link offers to continue it,
the bytes on disk are checked block by block against the hashes the sharer announced,
and the sharer sends only what is missing. Elsewhere (Firefox) the page says before any
download that a reload starts it over.

Headless Chromium dismisses real save dialogs, so the picker here hands out files of the
origin-private file system: the same FileSystemFileHandle, the same swap-file writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.flows import fragment, open_link, row, share
from tests.support.pages import COUNT_SENT, MiB, Pages, sha256_file, skip_in, write_random
from tests.support.procs import PeaNode

SIZE = 48 * MiB
BLOCK = MiB  # docs/transfer-protocol.md §3.2
WINDOW = 16 * MiB  # the sharer's unacknowledged bytes at most (§3.4)
# save-file.js commits when the uncommitted bytes reach the committed ones, at least 64 MiB:
# here at least 8 MiB (a smaller file, the same rule), so commits at about 8, 16 and 32 MiB
# (at the end of the write that crosses the mark: writes are up to 2 MiB).
MIN_COMMIT = 8 * MiB
FIRST_HOLD = 40 * MiB  # the page is reloaded while writing here (after two or three commits)
SECOND_HOLD = 46 * MiB  # …and again here, before the next commit
ALTERED = 5 * MiB + 5  # a byte of block 5 changed on disk while the page was away

# The save dialog answers with a file of the origin-private file system; the writer's
# writes at or beyond window.__peaHoldAt do not finish (and say so), as on a page that is
# about to be reloaded: what was not committed then is lost with it. Unless the test
# clears the hold and calls window.__peaRelease().
OPFS_PICKER = """
window.showSaveFilePicker = async ({ suggestedName } = {}) => {
  const dir = await navigator.storage.getDirectory();
  return dir.getFileHandle(suggestedName || "download", { create: true });
};
const createWritable = FileSystemFileHandle.prototype.createWritable;
FileSystemFileHandle.prototype.createWritable = async function (...args) {
  const w = await createWritable.apply(this, args);
  const write = w.write.bind(w);
  w.write = async (arg) => {
    if (window.__peaHoldAt !== undefined && (arg?.position ?? 0) >= window.__peaHoldAt) {
      window.__peaHeld = true;
      await new Promise((go) => { window.__peaRelease = go; });
    }
    return write(arg);
  };
  return w;
};
"""

DISK_SIZE = """async (name) => {
  const dir = await navigator.storage.getDirectory();
  try { return (await (await dir.getFileHandle(name)).getFile()).size; } catch { return -1; }
}"""

DISK_SHA256 = """async (name) => {
  const dir = await navigator.storage.getDirectory();
  const file = await (await dir.getFileHandle(name)).getFile();
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}"""

ALTER = """async ([name, at]) => {
  const dir = await navigator.storage.getDirectory();
  const h = await dir.getFileHandle(name);
  const old = new Uint8Array(await (await h.getFile()).slice(at, at + 1).arrayBuffer());
  const w = await h.createWritable({ keepExistingData: true });
  await w.write({ type: "write", position: at, data: new Uint8Array([old[0] ^ 0xff]) });
  await w.close();
}"""


def mb(n: int) -> str:
    """Bytes as the page writes them (format.js: decimal units, no decimals from 10 MB)."""
    x = n / 1e6
    return f"{int(x + 0.5)} MB" if x >= 10 else f"{int(x * 10 + 0.5) / 10} MB"


def poll(what: Any, until: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = what()
        if until(got):
            return got
        assert time.monotonic() < deadline, f"still {got!r} after {timeout_s} s"
        time.sleep(0.2)


def settled_sent(sharer: Any) -> int:
    """The sharer's sent bytes once they stop growing (its window is full, or its channel
    closed): what it sent for the download so far."""
    last = -1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = int(sharer.evaluate("window.__peaSent"))
        if now == last:
            return now
        last = now
        time.sleep(1)
    raise AssertionError("the sharer kept sending for 30 s")


def hold_then_reload(receiver: Any, at: int) -> None:
    receiver.evaluate(f"window.__peaHoldAt = {at}")
    poll(lambda: receiver.evaluate("window.__peaHeld === true"), bool)
    receiver.reload()
    expect(receiver.locator("[data-testid=status]")).to_have_text(
        "Connected to the sharer.", timeout=30000
    )


def shared_to_a_file_picking_page(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], f: Path, sharer: Any
) -> tuple[Any, str]:
    """`f` (48 MiB of random bytes) shared from `sharer` on one node; a receiving page on
    the other whose save dialog answers with origin-private files. The page and its URL."""
    write_random(f, SIZE)
    link = share(sharer, cluster[0].url, [f])
    receiver = pages.new(file_pickers=True)
    receiver.context.add_init_script(OPFS_PICKER)
    receiver.context.add_init_script(f"window.__peaMinCommit = {MIN_COMMIT}")
    url = cluster[1].url + "/" + fragment(link)
    open_link(receiver, url, expect_files=1)
    return receiver, url


def test_download_into_a_chosen_file_continues_after_a_reload(
    pages: Pages, engine: str, cluster: tuple[PeaNode, PeaNode], share_dir: Path
) -> None:
    """Reloaded once after a commit, the download continues from the committed bytes;
    reloaded again with a block on disk altered meanwhile, it continues from that block;
    the file verifies, and the sharer sent only what was missing each time."""
    skip_in(engine, "firefox", "no File System Access (its reload note is tested below)")
    f = share_dir / "receiver-reload" / "big.bin"
    sharer = pages.new()
    sharer.context.add_init_script(COUNT_SENT)
    receiver, _ = shared_to_a_file_picking_page(pages, cluster, f, sharer)
    note = receiver.locator("[data-testid=reload-note]")
    expect(note).to_contain_text("open the link again and press “Continue download”")
    the_row = row(receiver, "big.bin")
    detail = the_row.locator(".detail")

    the_row.locator("[data-testid=download]").click()
    hold_then_reload(receiver, FIRST_HOLD)
    on_disk = receiver.evaluate(DISK_SIZE, "big.bin")
    # Committed at least twice before the hold (the last write before it may end 2 MiB past it).
    assert 2 * MIN_COMMIT <= on_disk <= FIRST_HOLD + 2 * MiB, f"{on_disk} bytes committed"
    resumed = on_disk // BLOCK * BLOCK  # the committed whole blocks
    expect(detail).to_contain_text("were saved before this page was reloaded", timeout=30000)
    sent_first = settled_sent(sharer)

    the_row.locator("[data-testid=continue]").click()
    expect(detail).to_contain_text(f"resumed at {mb(resumed)}", timeout=30000)
    hold_then_reload(receiver, SECOND_HOLD)
    sent_second = settled_sent(sharer)
    # From there: at most up to the hold, the sharer's window and a block beyond it.
    assert sent_second - sent_first <= SECOND_HOLD + WINDOW + BLOCK - resumed

    receiver.evaluate(ALTER, ["big.bin", ALTERED])
    the_row.locator("[data-testid=continue]").click()
    # Block 5, altered on disk, is fetched again.
    expect(detail).to_contain_text(f"resumed at {mb(ALTERED // BLOCK * BLOCK)}", timeout=30000)
    expect(detail).to_contain_text("Saved and verified", timeout=120000)
    sent_last = settled_sent(sharer)
    print(f"sharer sent {sent_last - sent_second} bytes after the second reload")
    assert sent_last - sent_second <= SIZE - ALTERED // BLOCK * BLOCK + BLOCK
    assert receiver.evaluate(DISK_SIZE, "big.bin") == SIZE
    assert receiver.evaluate(DISK_SHA256, "big.bin") == sha256_file(f)

    # Finished: nothing is offered to continue any more.
    receiver.reload()
    expect(receiver.locator("[data-testid=status]")).to_have_text("Connected to the sharer.")
    expect(the_row.locator("[data-testid=download]")).to_be_visible()
    expect(the_row.locator("[data-testid=continue]")).to_be_hidden()


def test_without_file_system_access_the_page_says_a_reload_starts_over(
    pages: Pages, engine: str, cluster: tuple[PeaNode, PeaNode]
) -> None:
    """Firefox cannot write to a chosen file: before any download (here before the sharer
    is even found), the page says that a reload starts downloads over."""
    skip_in(engine, "chromium", "has File System Access (tested above)")
    receiver = pages.new(file_pickers=True)
    receiver.goto(cluster[0].url + "/#3." + "A" * 22 + "." + "Q" * 21 + "A")
    expect(receiver.locator("[data-testid=reload-note]")).to_have_text(
        "Keep this page open until your downloads finish: if it is reloaded or closed, "
        "they start over."
    )


def test_a_second_tab_cannot_write_into_the_file_another_tab_is_saving(
    pages: Pages, engine: str, cluster: tuple[PeaNode, PeaNode], share_dir: Path
) -> None:
    """Two tabs writing one chosen file would each replace it with their own copy on a
    commit, undoing the other's bytes. The second tab offered to continue the download is
    told another tab is saving it; the first goes on to a verified file."""
    skip_in(engine, "firefox", "no File System Access")
    f = share_dir / "two-tabs" / "big.bin"
    first, url = shared_to_a_file_picking_page(pages, cluster, f, pages.new())
    first.evaluate(f"window.__peaHoldAt = {FIRST_HOLD}")
    row(first, "big.bin").locator("[data-testid=download]").click()
    poll(lambda: first.evaluate("window.__peaHeld === true"), bool)  # committed, mid-file

    second = first.context.new_page()  # the same browser profile: the same saved downloads
    open_link(second, url, expect_files=1)
    other = row(second, "big.bin")
    other.locator("[data-testid=continue]").click()
    expect(other.locator(".detail")).to_contain_text(
        "Another tab of this browser is saving “big.bin”", timeout=30000
    )
    second.close()

    first.evaluate("window.__peaHoldAt = undefined; window.__peaRelease()")
    expect(row(first, "big.bin").locator(".detail")).to_contain_text(
        "Saved and verified", timeout=120000
    )
    assert first.evaluate(DISK_SHA256, "big.bin") == sha256_file(f)
