"""WebKit, as far as this machine can test it: Debian's WebKitGTK (MiniBrowser driven by
Selenium through WebKitWebDriver, under Xvfb). No WebKit build installable here has WebRTC,
so no transfer can run; what can: pea tells a WebKit without WebRTC so at once, and the
download path Safari uses (no transferable streams: the service worker pulls chunks over a
MessagePort) saves exact bytes to disk.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.support.pages import STATIC, MiB
from tests.support.procs import ROOT, PeaNode

MINIBROWSER = next(Path("/usr/lib").glob("*/webkit2gtk-4.*/MiniBrowser"), None)
DRIVER = shutil.which("WebKitWebDriver")
XVFB = shutil.which("Xvfb")
ESBUILD = ROOT / "web" / "node_modules" / ".bin" / "esbuild"
HARNESS = Path(__file__).parent / "webkit"
LINK = "/#3.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA"
WAIT_S = 30


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make install)"
    if not (MINIBROWSER and DRIVER and XVFB):
        return "WebKitGTK is not installed (make system-deps: webkit2gtk-driver, xvfb)"
    if not ESBUILD.exists():
        return "web/node_modules is missing (make web)"
    return None


@pytest.fixture(scope="module")
def webkit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """One MiniBrowser for the module, and the folder it saves downloads to."""
    if reason := _missing():
        pytest.skip(f"webkit: {reason}")
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    home = tmp_path_factory.mktemp("webkit-home")
    downloads = home / "Downloads"
    downloads.mkdir()
    (home / ".config").mkdir()
    (home / ".config" / "user-dirs.dirs").write_text(f'XDG_DOWNLOAD_DIR="{downloads}"\n')
    display = f":{90 + os.getpid() % 9}"
    xvfb = subprocess.Popen(
        [XVFB, display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],  # type: ignore[list-item]
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {**os.environ, "DISPLAY": display, "HOME": str(home)}
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    try:
        options = Options()
        options.binary_location = str(MINIBROWSER)
        options.add_argument("--automation")
        driver = webdriver.WebKitGTK(
            options=options, service=Service(executable_path=DRIVER, env=env)
        )
        driver.set_page_load_timeout(WAIT_S)
        driver.set_script_timeout(WAIT_S)
        try:
            yield driver, downloads
        finally:
            driver.quit()
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def status_of(driver: Any) -> tuple[str, str]:
    """(data-state, text) of the page's status line, waited for."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = driver.execute_script(
            "const s = document.querySelector('[data-testid=status]');"
            "return s && [s.dataset.state || '', s.textContent];"
        )
        if got and got[0] == "unsupported":
            return got[0], got[1]
        time.sleep(0.1)
    raise AssertionError(f"no 'unsupported' status within {WAIT_S} s: {got!r}")


def test_webkit_without_webrtc_is_told_on_both_pages(
    webkit: tuple[Any, Path], cluster: tuple[PeaNode, PeaNode]
) -> None:
    driver, _ = webkit
    driver.get(cluster[0].url + "/")
    assert driver.execute_script("return typeof RTCPeerConnection") == "undefined"
    _, text = status_of(driver)
    assert "has no WebRTC" in text and "Nothing was shared" in text, text
    assert driver.execute_script("return document.querySelectorAll('input[type=file]').length") == 0
    driver.get(cluster[1].url + LINK)
    _, text = status_of(driver)
    assert "has no WebRTC" in text and "Nothing was downloaded" in text, text
    instead = driver.execute_script(
        "return document.querySelector('[data-testid=instead]').textContent"
    )
    assert "Firefox, Chrome, Edge or Safari" in instead


@pytest.fixture(scope="module")
def harness_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """pea's download code and service worker, served from one loopback origin."""
    if reason := _missing():
        pytest.skip(f"webkit: {reason}")
    site = tmp_path_factory.mktemp("webkit-site")
    subprocess.run(
        [
            ESBUILD,
            HARNESS / "harness.js",
            "--bundle",
            "--format=esm",
            "--log-level=warning",
            f"--outfile={site / 'harness.js'}",
        ],
        check=True,
        timeout=60,
    )
    shutil.copy(HARNESS / "harness.html", site / "index.html")
    shutil.copy(STATIC.parent / "sw.js", site / "sw.js")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def pattern_sha256(size: int) -> str:
    """SHA-256 of what harness.js makes: the byte at offset o is o % 251."""
    return hashlib.sha256((bytes(range(251)) * (size // 251 + 1))[:size]).hexdigest()


def test_port_pump_download_saves_exact_bytes(webkit: tuple[Any, Path], harness_site: str) -> None:
    """WebKit cannot transfer a ReadableStream to the service worker (nor can Safari), so
    pea's download code pulls chunks over a MessagePort; the file on disk is exact."""
    driver, downloads = webkit
    driver.get(harness_site + "/")
    assert driver.execute_script("return window.isSecureContext") is True
    assert driver.execute_script("return 'serviceWorker' in navigator") is True
    assert driver.execute_script("return window.peaStreamsTransferable()") is False
    size, name = 8 * MiB + 4321, "pumped résumé.bin"
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.peaSave(arguments[0], arguments[1]).then(done, (e) => done(String(e)));",
        name,
        size,
    )
    assert result == "saved", result
    target = downloads / name
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if target.exists() and target.stat().st_size == size:
            break
        time.sleep(0.1)
    found = sorted(p.name for p in downloads.iterdir())
    assert target.exists() and target.stat().st_size == size, found
    h = hashlib.sha256()
    with open(target, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    assert h.hexdigest() == pattern_sha256(size)
