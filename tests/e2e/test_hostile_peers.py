"""The receiver treats the sharer's file list as hostile, and neither side lets a forged
signal end a connection that is already up and verified."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import TIMEOUT_MS, fragment, open_link, row, saved, share
from tests.e2e.relay import tampering_relay
from tests.support.pages import MiB, Pages, sha256_file, sized, write_random
from tests.support.procs import PeaNode

RLO_NAME = "invoice\u202efdp.exe"
CRLF_NAME = "crlf.txt"
# The file each hostile entry really is (picked from disk under its plain name), and what a
# malicious sharer claims about it in the manifest instead.
HOSTILE: dict[str, dict[str, str]] = {
    "h01.txt": {"name": "escape.txt", "path": "../../escape.txt"},
    "h02.txt": {"name": "evil", "path": "/etc/cron.d/evil"},
    "h03.txt": {"name": "evil.dll", "path": "C:\\Windows\\System32\\evil.dll"},
    "h04.txt": {"name": "back.txt", "path": "..\\..\\back.txt"},
    "h05.txt": {"name": RLO_NAME, "path": RLO_NAME},
    "h06.txt": {"name": "dup.txt", "path": "dup.txt"},
    "h07.txt": {"name": "DUP.txt", "path": "./DUP.txt"},
    "h08.txt": {"name": "b\u0000c\u001b[31m.txt", "path": "a/./../../b\u0000c\u001b[31m.txt"},
    "h09.txt": {"name": CRLF_NAME, "path": CRLF_NAME, "type": "text/plain\r\nX-Evil: 1"},
    "h10.txt": {"name": "CON", "path": "x/CON"},
    "h11.txt": {"name": "evil.exe .", "path": "evil.exe ."},
    "h12.txt": {"name": "long.txt", "path": "d/" + "x" * 400 + ".txt"},
    "h13.txt": {"name": "zero\u200bwidth\u2066.txt", "path": "//srv/zero\u200bwidth\u2066.txt"},
}

# A hostile sharer: the page is pea's, but what goes out on the control channel is rewritten.
REWRITE_MANIFEST = """
const HOSTILE = %s;
const send = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (this.label === "control" && typeof data === "string") {
    const m = JSON.parse(data);
    if (m.t === "add") {
      for (const f of m.files) Object.assign(f, HOSTILE[f.name] || {});
      data = JSON.stringify(m);
    }
  }
  return send.call(this, data);
};
"""

HIDDEN = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"
)


@pytest.fixture(scope="module")
def hostile_files(share_dir: Path) -> dict[str, Path]:
    out = {}
    for i, name in enumerate(HOSTILE):
        out[name] = share_dir / "hostile" / name
        write_random(out[name], 1000 + i)
    return out


def assert_safe_entry(name: str) -> None:
    """What any unzip tool on Linux, macOS or Windows writes inside the folder it extracts to."""
    assert name and not name.startswith("/"), name
    assert "\\" not in name and ":" not in name, name
    assert not HIDDEN.search(name), ascii(name)
    parts = PurePosixPath(name).parts
    assert all(p not in ("", ".", "..") for p in parts), name
    assert all(not p.endswith((".", " ")) for p in parts), name
    assert all(p.split(".")[0].upper() not in ("CON", "PRN", "AUX", "NUL") for p in parts), name
    assert all(len(p.encode()) <= 255 for p in parts), name
    assert all(unicodedata.category(c) not in ("Cc", "Cf") for c in name), ascii(name)


def test_hostile_names_and_types_are_made_safe(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], hostile_files: dict[str, Path]
) -> None:
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.context.add_init_script(REWRITE_MANIFEST % json.dumps(HOSTILE))
    link = share(sharer, node_a.url, list(hostile_files.values()))
    receiver = pages.new()
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=len(HOSTILE))

    # The right-to-left override is shown as what it is, with a warning, never obeyed.
    rlo = row(receiver, RLO_NAME)
    expect(rlo.locator(".name")).to_have_text("invoice⟨U+202E⟩fdp.exe")
    expect(rlo.locator("[data-testid=hidden-chars]")).to_be_visible()
    expect(row(receiver, "dup.txt").locator("[data-testid=hidden-chars]")).to_be_hidden()
    shown = receiver.locator(".files").inner_text().replace("\n", "").replace("\t", "")
    assert not HIDDEN.search(shown), f"a hidden character is rendered raw: {shown!a}"

    # One file on its own: a plain name on disk, the right bytes.
    with receiver.expect_download(timeout=TIMEOUT_MS) as info:
        rlo.locator("[data-testid=download]").click()
    assert info.value.suggested_filename == "invoicefdp.exe"
    assert sha256_file(saved(info.value)) == sha256_file(hostile_files["h05.txt"])
    expect(rlo).to_contain_text("verified")

    # A MIME type with CR LF in it: downloaded all the same, as application/octet-stream.
    crlf = row(receiver, CRLF_NAME)
    with receiver.expect_download(timeout=TIMEOUT_MS) as info:
        crlf.locator("[data-testid=download]").click()
    assert info.value.suggested_filename == CRLF_NAME
    assert sha256_file(saved(info.value)) == sha256_file(hostile_files["h09.txt"])
    expect(crlf).to_contain_text("Saved and verified")

    # Everything as a zip: every entry name is safe, unique, and every file is in it.
    with receiver.expect_download(timeout=TIMEOUT_MS) as dz:
        receiver.locator("[data-testid=download-all]").click()
    with zipfile.ZipFile(saved(dz.value)) as z:
        names = z.namelist()
        for name in names:
            assert_safe_entry(name)
        assert len({n.lower() for n in names}) == len(names) == len(HOSTILE), names
        got = Counter(hashlib.sha256(z.read(n)).hexdigest() for n in names)
    assert got == Counter(sha256_file(p) for p in hostile_files.values())
    assert "escape.txt" in names and "etc/cron.d/evil" in names, names
    assert "C_/Windows/System32/evil.dll" in names and "back.txt" in names, names
    assert "dup.txt" in names and "DUP (2).txt" in names, names
    assert "x/_CON" in names and "evil.exe" in names and "invoicefdp.exe" in names, names
    expect(receiver.locator("text=Zip saved.")).to_be_visible()


def test_note_cannot_flip_the_page(pages: Pages, cluster: tuple[PeaNode, PeaNode]) -> None:
    """A note stays exactly the text that was written, isolated from the page around it."""
    node_a, node_b = cluster
    sharer = pages.new()
    sharer.goto(node_a.url + "/")
    note = "pay to \u202eenilno\u202c now"
    sharer.locator("#note").fill(note)
    sharer.get_by_role("button", name="Share note").click()
    link = sharer.locator("[data-testid=share-link]").get_attribute("href", timeout=10000)
    assert link
    receiver = pages.new()
    receiver.goto(node_b.url + "/" + fragment(link))
    text = receiver.locator(".notes .note-text")
    expect(text).to_have_text(note, timeout=TIMEOUT_MS)
    expect(text).to_have_attribute("dir", "auto")


@pytest.fixture(scope="module")
def big_file(share_dir: Path, engine: str) -> Iterator[Path]:
    path = share_dir / "live" / "live.bin"
    write_random(path, sized(engine, 96 * MiB, 48 * MiB))
    yield path


@pytest.mark.parametrize("victim", ["sharer", "receiver"])
def test_forged_signal_does_not_end_a_verified_connection(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], big_file: Path, victim: str
) -> None:
    """In the middle of a download, the server (a relay in front of one side's node) delivers
    a signal with a bad MAC. That side refuses it and says so; the link, verified when it
    was made, carries on and the file arrives intact."""
    node_a, node_b = cluster
    upstream = node_a if victim == "sharer" else node_b
    with tampering_relay(upstream.url) as relay:
        sharer = pages.new()
        receiver = pages.new()
        link = share(sharer, (relay.url if victim == "sharer" else node_a.url), [big_file])
        base = relay.url if victim == "receiver" else node_b.url
        open_link(receiver, base + "/" + fragment(link), expect_files=1)
        expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(1)
        with receiver.expect_download(timeout=TIMEOUT_MS) as info:
            row(receiver, big_file.name).locator("[data-testid=download]").click()
        expect(row(receiver, big_file.name)).to_contain_text("left", timeout=20000)  # "… s left"
        assert relay.inject_forged("candidate") >= 1
        attacked = sharer if victim == "sharer" else receiver
        expect(attacked.locator("[role=alert]")).to_contain_text("did not verify", timeout=10000)
        assert sha256_file(saved(info.value)) == sha256_file(big_file)
        expect(row(receiver, big_file.name)).to_contain_text("verified", timeout=10000)
        expect(receiver.locator("[data-testid=status]")).to_have_text("Connected to the sharer.")
        expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(1)


# The browser never makes the request the download worker would answer (as when a
# download is blocked): the hidden frame that should start it goes nowhere.
BLOCK_DOWNLOAD_FRAME = """
const src = Object.getOwnPropertyDescriptor(HTMLIFrameElement.prototype, "src");
Object.defineProperty(HTMLIFrameElement.prototype, "src", {
  set(v) { if (!String(v).includes("/_pea/download/")) src.set.call(this, v); },
  get() { return src.get.call(this); },
});
"""


def test_a_download_that_never_starts_is_an_error(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], hostile_files: dict[str, Path]
) -> None:
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, [hostile_files["h01.txt"]])
    receiver = pages.new()
    receiver.context.add_init_script(BLOCK_DOWNLOAD_FRAME)
    open_link(receiver, node_b.url + "/" + fragment(link), expect_files=1)
    row(receiver, "h01.txt").locator("[data-testid=download]").click()
    expect(row(receiver, "h01.txt")).to_contain_text(
        "Failed: the browser did not start the download", timeout=TIMEOUT_MS
    )
    expect(row(receiver, "h01.txt")).not_to_contain_text("Saved")
    # The transfer behind it was stopped too, and the link is still good for the next try.
    expect(receiver.locator("[data-testid=status]")).to_have_text("Connected to the sharer.")
