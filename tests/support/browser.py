"""How Debian's Chromium is launched for tests and benchmarks (shared/BROWSER-TESTS.md)."""

from __future__ import annotations

import os

# The binary behind Debian's wrapper script, which skips a harmless warning.
CHROMIUM: str | None = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.path.exists(p)), None
)

CHROMIUM_ARGS: list[str] = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebRTC on loopback: lo is an ICE network only with these two.
    "--allow-loopback-in-peer-connection",
    "--use-fake-ui-for-media-stream",
]
