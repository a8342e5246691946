"""The web client's pure modules, tested in Node with its built-in runner (web/test/*.test.js):
names from a hostile manifest, and the sharer's flow control against a peer that is not pea."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.procs import ROOT

WEB = ROOT / "web"


@pytest.mark.parametrize("suite", sorted(p.name for p in (WEB / "test").glob("*.test.js")))
def test_web_module(suite: str) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (it also builds the web bundle)")
    if not (WEB / "node_modules" / "hash-wasm").is_dir():
        pytest.skip("web/node_modules is missing: run `make web`")
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", f"test/{suite}"],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
