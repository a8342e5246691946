"""The real image: built with deploy/Dockerfile by a Docker engine of the tests' own,
from a clean copy of the tree, then run the way the chart and compose run it.

One engine for the session (engine.py), in the host's network namespace while it
builds (the build reaches the package registries) and for the hardened run (on
loopback, `--network host`); compose gets it restarted inside a loopback-only
network namespace of its own (test_compose.py). Skipped, saying why, only where a
Docker engine cannot run at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.support.procs import ROOT

from . import bases
from .engine import CACHE, Engine, locked, missing_tools, remove_stale_netns

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# Files the ignore rules must keep out of the image (test_image.py looks for them).
CANARY = "pea-canary-7d41c0ffee"
CANARIES = {
    ".env": f"PEA_SECRET={CANARY}\n",
    "deploy/.env": f"PEA_SECRET={CANARY}\nREDIS_PASSWORD={CANARY}\n",
    "signal/pea/static/stale-canary.js": f"// {CANARY}\n",
    "web/node_modules/canary/index.js": f"// {CANARY}\n",
    "signal/pea/__pycache__/canary.cpython-311.pyc": CANARY,
}
IMAGE = "pea:test"
SOURCE = "https://pea.invalid/source"  # what the test passes as PEA_SOURCE


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_tools()
    if reason is None and not (ROOT / ".git").exists():
        reason = "needs a git checkout (the image is built from its tracked files)"
    if reason:
        for item in items:
            if "tests/image/" in str(item.path).replace(os.sep, "/"):
                item.add_marker(pytest.mark.skip(reason=f"no Docker engine: {reason}"))


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with locked():
        remove_stale_netns()
        e = Engine()
        try:
            e.start()
        except Exception as exc:  # a kernel without what dockerd needs
            e.stop()
            pytest.skip(f"this machine cannot run a Docker engine: {exc}")
        try:
            yield e
        finally:
            bases.stop_all()
            e.stop()


def revision() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


def clean_copy(dest: Path) -> Path:
    """The tracked (and new, not ignored) files of the tree, plus the canaries."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60,
    ).stdout.split(b"\0")  # fmt: skip
    for raw in listed:
        if not raw:
            continue
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for rel, text in CANARIES.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text)
    return dest


@dataclass
class Built:
    name: str
    id: str
    context: Path
    seconds: float
    report: list[str] = field(default_factory=list)


def build(engine: Engine, context: Path, tag: str, *, buildkit: bool) -> float:
    args = {**bases.BUILD_ARGS, "PEA_REVISION": revision(), "PEA_SOURCE": SOURCE}
    argv = [
        "build", "--network", "host", "-f", "deploy/Dockerfile", "-t", tag,
        *(a for k, v in args.items() for a in ("--build-arg", f"{k}={v}")),
        ".",
    ]  # fmt: skip
    started = time.monotonic()
    env = {"DOCKER_BUILDKIT": "1" if buildkit else "0", "BUILDKIT_PROGRESS": "plain"}
    engine.docker(*argv, cwd=context, env=env, timeout=900)
    return time.monotonic() - started


@pytest.fixture(scope="session")
def context() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pea-image-context-") as d:
        yield clean_copy(Path(d))


@pytest.fixture(scope="session")
def image(engine: Engine, context: Path) -> Built:
    """deploy/Dockerfile built with BuildKit (which reads Dockerfile.dockerignore)."""
    # The compose file's images are made meanwhile, for test_stack.py.
    bases.prefetch(
        bases.compose_bases(yaml.safe_load((context / "deploy" / "compose.yaml").read_text()))
    )
    engine.use(None)
    report = bases.ensure(engine, bases.dockerfile_bases(DOCKERFILE, bases.BUILD_ARGS), CACHE)
    seconds = build(engine, context, IMAGE, buildkit=True)
    engine.docker("tag", IMAGE, "pea:local")
    image_id = engine.inspect("image", IMAGE)["Id"]
    report.append(f"BuildKit build: {seconds:.0f} s")
    print("\n".join(report))
    return Built(IMAGE, image_id, context, seconds, report)
