"""What a person does on pea, as Playwright steps: share files, open the link, download."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Download, Locator, Page, expect

from tests.support.pages import DOWNLOAD_DIRS

TIMEOUT_MS = 30000
# docs/transfer-protocol.md §1: "#3." secret "." commitment to the sharer's public key.
LINK_RE = re.compile(r"#3\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$")


def share(page: Page, base_url: str, files: list[Path]) -> str:
    """Open the start page, pick files; returns the share link the page shows."""
    page.goto(base_url + "/")
    page.locator("input[type=file]").set_input_files([str(f) for f in files])
    link = page.locator("[data-testid=share-link]")
    expect(link).to_have_attribute("href", LINK_RE)
    expect(page.locator("[data-testid=status]")).to_contain_text("waiting for someone")
    href = link.get_attribute("href")
    assert href
    return href


def fragment(link: str) -> str:
    return link[link.index("#") :]


def link_parts(link: str) -> tuple[str, str]:
    """(secret, commit) of a version-3 share link."""
    m = LINK_RE.search(link)
    assert m, f"not a pea v3 link: {link}"
    return m[1], m[2]


def open_link(page: Page, url: str, expect_files: int) -> None:
    page.goto(url)
    expect(page.locator("[data-testid=file]")).to_have_count(expect_files, timeout=TIMEOUT_MS)
    expect(page.locator("[data-testid=status]")).to_have_text("Connected to the sharer.")


def css_string(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def row(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid=file][data-name="{css_string(name)}"]')


def download(page: Page, name: str) -> Path:
    """Click a file's download button and wait for the browser to have saved it."""
    if page.context.browser.browser_type.name == "firefox":  # type: ignore[union-attr]
        return _firefox_download(page, name)
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        row(page, name).locator("[data-testid=download]").click()
    # Chromium itself replaces characters that are unsafe in file names on some systems.
    assert info.value.suggested_filename == re.sub(r'[<>:"|?*\\]', "_", name)
    return saved(info.value)


def firefox_name_matches(got: str, name: str) -> bool:
    """Firefox names a second download of the same name in one browser "name(1).ext"
    (the browser lives for the whole session, so earlier tests count)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    return re.fullmatch(re.escape(stem) + r"(\(\d+\))?" + re.escape(suffix), got) is not None


def _firefox_download(page: Page, name: str) -> Path:
    folder = DOWNLOAD_DIRS[page.context.browser]
    size = int(row(page, name).get_attribute("data-size") or -1)
    before = set(folder.iterdir())
    events: list[Download] = []

    def on_download(d: Download) -> None:
        events.append(d)

    page.on("download", on_download)
    try:
        row(page, name).locator("[data-testid=download]").click()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            if events:  # streamed through the service worker: Playwright saw it
                got = events[0].suggested_filename
                assert firefox_name_matches(got, re.sub(r'[<>:"|?*\\]', "_", name)), (got, name)
                return saved(events[0])
            new = [p for p in set(folder.iterdir()) - before if p.suffix != ".part"]
            for p in new:
                part = p.with_name(p.name + ".part")
                try:
                    whole = not part.exists() and p.stat().st_size == size
                except FileNotFoundError:  # a temporary name Firefox renamed meanwhile
                    continue
                if whole:
                    # The same name twice in one browser is saved as "name(1)"; the file can
                    # land before Playwright's event does, named as Firefox sanitised it.
                    stem = Path(re.sub(r'[<>:"|?*\\]', "_", name)).stem
                    assert p.name.startswith(stem), (p.name, name)
                    return p
            time.sleep(0.1)
        raise AssertionError(f"Firefox did not save {name!r} within {TIMEOUT_MS} ms")
    finally:
        page.remove_listener("download", on_download)


def saved(dl: Download) -> Path:
    path = dl.path()  # returns once the download has finished, or failed
    failure = dl.failure()
    assert failure is None, f"download of {dl.suggested_filename} failed: {failure}"
    return Path(path)


def assert_not_finished(dl: Download, size: int, since: float) -> None:
    """A download the page errored (bad bytes, sharer gone) must not end as a complete file."""
    if dl.page.context.browser.browser_type.name != "firefox":  # type: ignore[union-attr]
        assert dl.failure() is not None, f"{dl.suggested_filename} looks complete"
        return
    # Firefox sends no end event for a stream that errors before its first byte, so
    # failure() would wait forever: look at what it left in the downloads folder instead
    # (an empty file and a .part), after giving it time to finish were it going to. Only
    # files written since the click (time.time() `since`) count: names repeat across tests.
    folder = DOWNLOAD_DIRS[dl.page.context.browser]
    stem = Path(dl.suggested_filename).stem
    time.sleep(1)
    for p in folder.iterdir():
        if p.name.startswith(stem) and p.suffix != ".part" and p.stat().st_mtime >= since:
            assert p.stat().st_size != size, f"{p.name} was saved whole"


def percent(page: Page, name: str) -> float:
    """How far a running download of `name` is, as its row says ("37% · …"); 0 otherwise."""
    text = row(page, name).locator(".detail").inner_text()
    head = text.split("%")[0]
    return float(head) if "%" in text and head.isdigit() else 0.0


def wait_for_percent(page: Page, name: str, at_least: float, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while percent(page, name) < at_least:
        assert time.monotonic() < deadline, f"{name} stuck at {percent(page, name)} %"
        time.sleep(0.2)
