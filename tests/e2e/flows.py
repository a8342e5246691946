"""What a person does on pea, as Playwright steps: share files, open the link, download."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Download, Locator, Page, expect

TIMEOUT_MS = 30000
# docs/transfer-protocol.md §1: "#2." secret "." commitment to the sharer's public key.
LINK_RE = re.compile(r"#2\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$")


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
    """(secret, commit) of a version-2 share link."""
    m = LINK_RE.search(link)
    assert m, f"not a pea v2 link: {link}"
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
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        row(page, name).locator("[data-testid=download]").click()
    # Chromium itself replaces characters that are unsafe in file names on some systems.
    assert info.value.suggested_filename == re.sub(r'[<>:"|?*\\]', "_", name)
    return saved(info.value)


def saved(dl: Download) -> Path:
    path = dl.path()  # returns once the download has finished, or failed
    failure = dl.failure()
    assert failure is None, f"download of {dl.suggested_filename} failed: {failure}"
    return Path(path)
