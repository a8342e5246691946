"""The QR code on the sharing page is what a phone scans: it must carry exactly the link
the page shows (a wrong or truncated link would still draw a fine-looking QR), in the
light and the dark theme alike."""

from __future__ import annotations

import io
from pathlib import Path

import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.flows import link_parts, share
from tests.support.pages import Pages, write_random
from tests.support.procs import PeaNode


def scan(pages: Pages, page: Page) -> str:
    """What a scanner reads from the QR as drawn on screen."""
    qr = page.locator("[data-testid=qr]")
    expect(qr).to_have_js_property("complete", True)
    box = qr.bounding_box()
    assert box is not None
    before = len(pages.errors)
    png = Image.open(io.BytesIO(page.screenshot(clip=box, caret="initial")))
    # Firefox's screenshot injects a <style> of Playwright's own, which pea's CSP
    # (style-src 'self') rightly blocks and Firefox reports as a page error.
    pages.errors[before:] = [e for e in pages.errors[before:] if "blocked an inline style" not in e]
    # Contrast as a phone camera needs it: the light modules and quiet zone are light
    # (black on the dark theme's card would still decode here, but scans badly).
    gray = png.convert("L")
    light = sum(gray.histogram()[160:]) / (gray.width * gray.height)
    assert light > 0.4, f"only {light:.0%} of the QR is light: no light background"
    # try_invert=False: many phone scanners only read dark modules on a light background.
    found = zxingcpp.read_barcode(
        png, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode), try_invert=False
    )
    assert found is not None, "no dark-on-light QR code could be read from the page"
    return found.bytes.decode()


def test_qr_encodes_exactly_the_share_link_in_light_and_dark(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], share_dir: Path
) -> None:
    small = share_dir / "qr" / "small.txt"
    write_random(small, 1024)
    backgrounds: set[str] = set()
    for scheme in ("light", "dark"):
        # Chromium follows Playwright's emulation; Firefox ESR here ignores it, so a
        # Firefox launched with a dark-theme pref stands in.
        dark = scheme == "dark"
        page = pages.new(variant="dark" if dark and pages.engine == "firefox" else "")
        if dark:
            page.emulate_media(color_scheme="dark")
        link = share(page, cluster[0].url, [small])
        assert page.locator("[data-testid=share-link]").get_attribute("href") == link
        link_parts(link)  # a v3 link: #3.<22 chars>.<22 chars>
        assert scan(pages, page) == link, f"the QR in the {scheme} theme is not the share link"
        backgrounds.add(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    assert len(backgrounds) == 2, "the page has no dark theme: the dark check checked nothing"
