"""A home of the NAT lab as a person at a computer there: a browser per engine, driven
by Playwright from a thread inside the home's namespace (the Playwright driver, and the
browsers it launches, are spawned there and reach the world only through the router).

Every Playwright call for a home runs on its thread (`Home.call`); pages stay there.
Another kind of peer (a command-line client) would be one more thing `Home.start`s.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.nat.lab import Lab
from tests.support.browser import HIDE_FILE_PICKERS, launch
from tests.support.pages import DOWNLOAD_DIRS, FIREFOX_NOISE

# Firefox's console line when ICE fails: what the lab's failing cases are about.
ICE_FAILED_NOISE = "ICE failed, add a TURN server"

T = TypeVar("T")

# As a person's browser: no media permission, so host candidates are mDNS names (Chromium
# and Firefox hide local addresses from pages), and no loopback ICE.
FIREFOX_PREFS = {"permissions.default.microphone": 0, "media.peerconnection.ice.loopback": False}


class Home:
    def __init__(self, lab: Lab, role: str, downloads: Path) -> None:
        self.lab = lab
        self.role = role
        self.thread = lab.thread(role)
        self.downloads = downloads
        self.pw: Any = None
        self.browsers: dict[str, Any] = {}
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 120) -> T:
        """Run fn(*args) on the home's thread (inside its namespace) and wait for it."""
        return self.thread.call(fn, *args, timeout=timeout)

    def browser(self, engine: str) -> Any:
        """On the home's thread: its browser of `engine`, launched on first use."""
        if self.pw is None:
            from playwright.sync_api import sync_playwright

            self.pw = sync_playwright().start()
        if engine not in self.browsers:
            folder = self.downloads / engine
            folder.mkdir(parents=True, exist_ok=True)
            b = launch(
                self.pw,
                engine,
                firefox_prefs=FIREFOX_PREFS,
                downloads_path=folder,
                timeout_ms=90000,  # Firefox alone takes 3 s to start on an idle machine
            )
            DOWNLOAD_DIRS[b] = folder
            self.browsers[engine] = b
        return self.browsers[engine]

    def page(self, engine: str) -> Any:
        """On the home's thread: a fresh page in a context of its own."""
        ctx = self.browser(engine).new_context(accept_downloads=True)
        ctx.set_default_timeout(30000)
        ctx.add_init_script(HIDE_FILE_PICKERS)
        self.contexts.append(ctx)
        page = ctx.new_page()

        def on_error(e: Any) -> None:
            noise = FIREFOX_NOISE.search(str(e)) or ICE_FAILED_NOISE in str(e)
            if not (engine == "firefox" and noise):
                self.errors.append(f"{self.role} {engine} {page.url}: {e}")

        page.on("pageerror", on_error)
        return page

    def forget_pages(self) -> None:
        """Close every page of the case (on the home's thread)."""

        def close() -> None:
            for ctx in self.contexts:
                with contextlib.suppress(Exception):
                    ctx.close()
            self.contexts.clear()

        self.call(close)

    def close(self) -> None:
        def stop() -> None:
            for b in self.browsers.values():
                with contextlib.suppress(Exception):
                    b.close()
            if self.pw is not None:
                with contextlib.suppress(Exception):
                    self.pw.stop()

        with contextlib.suppress(Exception):
            self.call(stop, timeout=60)
