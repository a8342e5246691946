"""How Debian's browsers are launched for tests and benchmarks.

One recipe per engine: `launch(pw, "chromium" | "firefox", ...)`. Never Playwright's own
browser downloads (`playwright install` fails here): the system's chromium and firefox-esr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENGINES = ("chromium", "firefox")

# The binary behind Debian's wrapper script, which skips a harmless warning.
CHROMIUM: str | None = next(
    (p for p in ("/usr/lib/chromium/chromium", "/usr/bin/chromium") if os.path.exists(p)), None
)
FIREFOX: str | None = "/usr/bin/firefox-esr" if os.path.exists("/usr/bin/firefox-esr") else None

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

FIREFOX_PREFS: dict[str, Any] = {
    # Loopback is not an ICE network by default.
    "media.peerconnection.ice.loopback": True,
    # Without a media permission Firefox gathers only on the default route's interface,
    # and a loopback-only namespace has none (grant_permissions has no effect there).
    "permissions.default.microphone": 1,
    # Quiet, offline-friendly profile: nothing to fetch, nothing to ask.
    "browser.shell.checkDefaultBrowser": False,
    "app.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    # Downloads go straight to the downloads folder, never to a dialog.
    "browser.download.useDownloadDir": True,
    "browser.download.always_ask_before_handling_new_types": False,
    "browser.download.alwaysOpenPanel": False,
}


# Pages run before this script lack File System Access: Chromium then downloads through
# the service worker like the other engines. Without it a download button opens a save
# dialog, which a headless browser dismisses at once. Tests of the chosen-file path
# (test_receiver_reload.py) leave the API in place and back its picker themselves.
HIDE_FILE_PICKERS = "delete window.showSaveFilePicker; delete window.showDirectoryPicker;"


def executable(engine: str) -> str | None:
    return CHROMIUM if engine == "chromium" else FIREFOX


def launch(
    pw: Any,
    engine: str,
    *,
    chromium_args: list[str] | None = None,
    firefox_prefs: dict[str, Any] | None = None,
    downloads_path: Path | None = None,
    timeout_ms: int = 30000,
) -> Any:
    """A headless browser of `engine`. Extra args/prefs add to (or override) the base ones."""
    extra: dict[str, Any] = {"timeout": timeout_ms}
    if downloads_path is not None:
        extra["downloads_path"] = str(downloads_path)
    if engine == "chromium":
        return pw.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *(chromium_args or [])], **extra
        )
    if engine == "firefox":
        # Stock Firefox over WebDriver BiDi: needs the moz-firefox channel and a pinned
        # Playwright (pyproject.toml says which releases work).
        return pw.firefox.launch(
            channel="moz-firefox",
            executable_path=FIREFOX,
            headless=True,
            firefox_user_prefs={**FIREFOX_PREFS, **(firefox_prefs or {})},
            **extra,
        )
    raise ValueError(f"unknown browser engine {engine!r}")
