"""A person shares files on one node; others receive them through another node of the
cluster, straight from the sharer's browser, and get exactly the bytes that were shared."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import download, fragment, open_link, row, saved, share
from tests.support.pages import MiB, Pages, sha256_file, sized, skip_in, write_random
from tests.support.procs import PeaNode

EMPTY = "empty.txt"
NON_ASCII = "résumé 日本語 ✓.txt"
HTML_NAME = "<img src=x onerror=alert(1)>&amp;<b>bold.html"
BIG = "big.bin"
FOLDER = {"notes/todo.md": 3000, "notes/deep/data.bin": 3 * MiB + 17}


@pytest.fixture(scope="module")
def shared(share_dir: Path, engine: str) -> dict[str, Path]:
    files = {EMPTY: 0, NON_ASCII: 12345, HTML_NAME: 777, BIG: sized(engine, 200 * MiB, 24 * MiB)}
    out = {}
    for name, size in files.items():
        out[name] = share_dir / "top" / name
        write_random(out[name], size)
    for rel, size in FOLDER.items():
        write_random(share_dir / rel, size)
    return out


def test_files_reach_two_receivers_verified(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], shared: dict[str, Path], share_dir: Path
) -> None:
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, list(shared.values()))
    assert link.startswith(node_a.url + "/#")
    qr = sharer.locator("[data-testid=qr]")
    expect(qr).to_have_js_property("complete", True)
    assert qr.evaluate("img => img.naturalWidth") > 0, "the QR code image did not load"

    receivers = [pages.new(), pages.new()]
    for r in receivers:
        open_link(r, node_b.url + "/" + fragment(link), expect_files=len(shared))
        for name, path in shared.items():
            expect(row(r, name)).to_have_attribute("data-size", str(path.stat().st_size))
        # A name that looks like HTML is shown as text, never parsed into elements.
        expect(row(r, HTML_NAME).locator(".name")).to_have_text(HTML_NAME)
        assert r.locator("main img").count() == 0
        assert r.locator("main b").count() == 0
    expect(sharer.locator("[data-testid=status]")).to_contain_text("Sharing with 2 receivers")

    # More can be added while sharing, and reaches both receivers.
    sharer.locator("input[type=file]").set_input_files(str(share_dir / "notes" / "todo.md"))
    for r in receivers:
        expect(r.locator("[data-testid=file]")).to_have_count(len(shared) + 1)

    # Both receivers fetch the big file at once, each served on its own.
    r1, r2 = receivers
    with r1.expect_download() as d1:
        row(r1, BIG).locator("[data-testid=download]").click()
    with r2.expect_download() as d2:
        row(r2, BIG).locator("[data-testid=download]").click()
    want = sha256_file(shared[BIG])
    assert sha256_file(saved(d1.value)) == want
    assert sha256_file(saved(d2.value)) == want
    for r in receivers:
        expect(row(r, BIG)).to_contain_text("verified")

    # Every small file on its own, named as shared, byte for byte.
    for name in (EMPTY, NON_ASCII, HTML_NAME):
        got = download(r1, name)
        assert sha256_file(got) == sha256_file(shared[name]), name
        expect(row(r1, name)).to_contain_text("verified")

    # Everything as one zip, folder paths kept.
    with r2.expect_download() as dz:
        r2.locator("[data-testid=download-all]").click()
    assert dz.value.suggested_filename == "pea-files.zip"
    with zipfile.ZipFile(saved(dz.value)) as z:
        assert sorted(z.namelist()) == sorted([*shared, "todo.md"])
        assert_zip_matches(z, {**shared, "todo.md": share_dir / "notes" / "todo.md"})
    expect(r2.locator("text=Zip saved.")).to_be_visible()


def assert_zip_matches(z: zipfile.ZipFile, sources: dict[str, Path]) -> None:
    for info in z.infolist():
        h = hashlib.sha256()
        with z.open(info) as f:
            while block := f.read(4 * MiB):
                h.update(block)
        assert h.hexdigest() == sha256_file(sources[info.filename]), info.filename


def test_folder_keeps_its_relative_paths(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], shared: dict[str, Path], share_dir: Path
) -> None:
    """A folder added while sharing: its relative paths reach the receiver and the zip."""
    skip_in(pages.engine, "firefox", "Playwright cannot pick a folder (set_input_files) there")
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, [shared[NON_ASCII]])
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    with sharer.expect_file_chooser() as chooser:
        sharer.get_by_role("button", name="Add a folder").click()
    chooser.value.set_files(share_dir / "notes")
    expect(receiver.locator("[data-testid=file]")).to_have_count(1 + len(FOLDER))
    expect(row(receiver, "data.bin")).to_contain_text("notes/deep/data.bin")
    with receiver.expect_download() as dz:
        receiver.locator("[data-testid=download-all]").click()
    with zipfile.ZipFile(saved(dz.value)) as z:
        assert sorted(z.namelist()) == sorted([NON_ASCII, *FOLDER])
        assert_zip_matches(z, {NON_ASCII: shared[NON_ASCII]} | {r: share_dir / r for r in FOLDER})


def test_download_without_transferable_streams(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], shared: dict[str, Path], share_dir: Path
) -> None:
    """Browsers that cannot hand a stream to the service worker (Safari) get the bytes
    pulled over a MessagePort instead: still streamed, still verified."""
    node_a, node_b = cluster
    sharer = pages.new()
    medium = share_dir / "notes" / "deep" / "data.bin"
    link = share(sharer, node_a.url, [medium, shared[NON_ASCII]])
    receiver = pages.new()
    receiver.context.add_init_script("window.__peaForcePortPump = true")
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=2)
    for name, src in (("data.bin", medium), (NON_ASCII, shared[NON_ASCII])):
        assert sha256_file(download(receiver, name)) == sha256_file(src)
        expect(row(receiver, name)).to_contain_text("verified")


def test_drop_and_note_by_keyboard(pages: Pages, cluster: tuple[PeaNode, PeaNode]) -> None:
    """A share started by a drop and a note typed and sent with the keyboard alone; the
    note, however much it looks like HTML, arrives as text."""
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.goto(node_a.url + "/")
    # The first Tab stops: the brand link, then the (visually hidden) file picker.
    sharer.keyboard.press("Tab")
    sharer.keyboard.press("Tab")
    assert sharer.evaluate("document.activeElement.type") == "file"
    assert sharer.evaluate("document.activeElement.multiple") is True
    # Focus on the hidden input shows on its visible "Choose files" button.
    outline = sharer.evaluate(
        "getComputedStyle(document.activeElement.nextElementSibling).outlineStyle"
    )
    assert outline not in ("none", "")
    sharer.evaluate(
        """() => {
          const dt = new DataTransfer();
          dt.items.add(new File(["dropped bytes"], "dropped.txt", {type: "text/plain"}));
          document.getElementById("drop").dispatchEvent(
            new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }"""
    )
    link = sharer.locator("[data-testid=share-link]").get_attribute("href", timeout=10000)
    assert link
    note = '<script>alert("x")</script> meet at 6 & bring <b>snacks</b>'
    sharer.locator("#more-note").focus()
    sharer.keyboard.type(note)
    sharer.keyboard.press("Tab")
    sharer.keyboard.press("Enter")
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    expect(row(receiver, "dropped.txt")).to_have_attribute("data-size", "13")
    expect(receiver.locator(".notes .note-text")).to_have_text(note)
    assert receiver.locator("main script, main b").count() == 0
    got = download(receiver, "dropped.txt")
    assert got.read_bytes() == b"dropped bytes"
