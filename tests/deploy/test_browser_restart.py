"""Runs browser/restart_transfer.py (Chromium + make cluster) in a loopback-only namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from .helpers import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
STATIC = ROOT / "signal" / "pea" / "static" / "index.html"


def test_browser_transfer_through_nginx_during_rolling_restart() -> None:
    if not any(os.path.exists(p) for p in CHROMIUM):
        pytest.skip("Debian chromium is not installed (make system-deps)")
    if not STATIC.is_file():
        pytest.skip("the web bundle is not built (make web)")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare for a loopback-only network namespace")
    inner = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.e2e.conftest",
        "tests/deploy/browser/restart_transfer.py",
    ]  # fmt: skip
    cmd = "ip link set lo up && exec " + " ".join(inner)
    out = subprocess.run(
        ["unshare", "-n", "sh", "-c", cmd],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    report = out.stdout[-6000:] + out.stderr[-3000:]
    assert out.returncode == 0, report
    assert "1 passed" in out.stdout, report
