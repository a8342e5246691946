"""What the browser tests share, outside any conftest: browsers per engine and launch
variant, pages that fail the test on an uncaught error, and file helpers."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import HIDE_FILE_PICKERS, executable, launch
from tests.support.procs import ROOT

# A non-local host name that still lands on loopback: a page there is not a secure context.
LAN_HOST = "lan.pea.test"
LAN_CHROMIUM_ARGS = [f"--host-resolver-rules=MAP {LAN_HOST} 127.0.0.1"]
# Firefox resolves the names listed here to loopback, and still treats them as the
# non-local names they are.
LAN_FIREFOX_PREFS = {"network.dns.localDomains": LAN_HOST}
STATIC = ROOT / "signal" / "pea" / "static" / "index.html"
MiB = 1 << 20

# Launch variants besides the normal browser (name -> chromium args, firefox prefs).
# "noloop": no loopback ICE candidate, hence no path between two pages, as behind a
# strict NAT (Chromium without media permission also gathers none: see Pages.new).
# "nowebrtc": WebRTC switched off the way hardened profiles and Tor Browser do.
# "dark": prefers-color-scheme dark (Firefox ESR here ignores Playwright's color_scheme).
VARIANTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "default": ([], {}),
    "noloop": ([], {"media.peerconnection.ice.loopback": False}),
    "nowebrtc": ([], {"media.peerconnection.enabled": False}),
    "dark": (
        [],
        {"layout.css.prefers-color-scheme.content-override": 0, "ui.systemUsesDarkTheme": 1},
    ),
}


# Firefox saves a blob: download (pea's memory mode, as on plain HTTP) into the browser's
# downloads folder without any Playwright event: flows.download looks there instead.
DOWNLOAD_DIRS: dict[Any, Path] = {}


class Browsers:
    """One browser per (engine, variant), launched on first use and kept for the session:
    Firefox takes about 3 s to start. Each has its own downloads folder, because Firefox
    saves blob: downloads there without telling Playwright (flows.download looks there)."""

    def __init__(self, pw: Any, root: Path) -> None:
        self.pw = pw
        self.root = root
        self.open: dict[tuple[str, str], Any] = {}

    def get(self, engine: str, variant: str = "default") -> Any:
        key = (engine, variant)
        if key not in self.open:
            if executable(engine) is None:
                pkg = "chromium" if engine == "chromium" else "firefox-esr"
                pytest.skip(f"Debian {pkg} is not installed (make system-deps)")
            args, prefs = VARIANTS[variant]
            downloads = self.root / f"{engine}-{variant}"
            downloads.mkdir(parents=True, exist_ok=True)
            self.open[key] = launch(
                self.pw,
                engine,
                chromium_args=[*LAN_CHROMIUM_ARGS, *args],
                firefox_prefs={**LAN_FIREFOX_PREFS, **prefs},
                downloads_path=downloads,
            )
            DOWNLOAD_DIRS[self.open[key]] = downloads
        return self.open[key]

    def close(self) -> None:
        for b in self.open.values():
            b.close()


def engine_of(page: Any) -> str:
    return str(page.context.browser.browser_type.name)


def skip_in(engine: str, not_in: str, reason: str) -> None:
    """Skip, saying why, a test this engine cannot do (never silently)."""
    if engine == not_in:
        pytest.skip(f"{engine}: {reason}")


# Firefox reports some of its own console messages as page errors through Playwright, though
# no script threw: a failed ICE attempt, a WebSocket to a node that is down or cut off by
# a network that went away, a download whose stream the page errored on purpose (bad
# SHA-256, sharer gone). Tests check what the person sees in those cases; these messages
# are not uncaught exceptions.
FIREFOX_NOISE = re.compile(
    r"ICE failed, add a STUN server"
    r"|can.t establish a connection to the server at wss?://"
    r"|The connection to wss?://\S+ was interrupted while the page was loading"
    r"|A ServiceWorker intercepted the request and encountered an unexpected error"
)


# An init script for a sharer's page: counts the file bytes it hands to its data channels,
# minus what was still in a channel's own buffer when it closed (never sent): the bytes it
# really sent, in `window.__peaSent`.
COUNT_SENT = """
window.__peaSent = 0;
const send = RTCDataChannel.prototype.send;
RTCDataChannel.prototype.send = function (data) {
  if (this.label === "get" && typeof data !== "string") {
    window.__peaSent += data.byteLength;
    if (!this.__peaCounted) {
      this.__peaCounted = true;
      this.addEventListener("close", () => { window.__peaSent -= this.bufferedAmount; });
    }
  }
  return send.call(this, data);
};
"""


class Pages:
    """Opens pages each in its own browser context (its own storage and service worker),
    and fails the test if any page throws an uncaught error. Pages are of the test's
    engine unless told otherwise."""

    def __init__(self, browsers: Browsers, engine: str) -> None:
        self.browsers = browsers
        self.engine = engine
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    @property
    def browser(self) -> Any:
        return self.browsers.get(self.engine)

    def new(
        self,
        *,
        grant: bool = True,
        engine: str | None = None,
        variant: str = "",
        file_pickers: bool = False,
        **context: Any,
    ) -> Any:
        """grant=False: no path between pages (Chromium without media permission gathers
        no loopback candidate; Firefox gets the same from a browser without loopback ICE).
        file_pickers=False hides File System Access (see HIDE_FILE_PICKERS).
        `context`: more options for Playwright's new_context (locale, viewport, …)."""
        engine = engine or self.engine
        if not grant and engine == "firefox":
            variant = variant or "noloop"
        ctx = self.browsers.get(engine, variant or "default").new_context(
            accept_downloads=True, **context
        )
        if grant and engine == "chromium":
            # Without media permission Chromium gathers no loopback candidate at all.
            ctx.grant_permissions(["microphone"])
        ctx.set_default_timeout(30000)
        if not file_pickers:
            ctx.add_init_script(HIDE_FILE_PICKERS)
        self.contexts.append(ctx)
        page = ctx.new_page()
        noise = FIREFOX_NOISE if engine == "firefox" else None

        def on_error(e: Any) -> None:
            if not (noise and noise.search(str(e))):
                self.errors.append(f"{page.url}: {e}")

        page.on("pageerror", on_error)
        return page

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


def sized(engine: str, chromium: int, firefox: int) -> int:
    """Big files stay big in Chromium; Firefox moves 4-11 MiB/s here, so its variants use
    moderate sizes to keep the browser tier well within CI time."""
    return chromium if engine == "chromium" else firefox


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(4 * MiB):
            h.update(block)
    return h.hexdigest()


def write_random(path: Path, size: int) -> None:
    """Incompressible content, written in blocks so 200 MiB never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n
