"""The image deploy/Dockerfile builds: what is in it, and how it runs when hardened the
way the chart runs it (read-only root, uid 10001, no capabilities, /tmp a tmpfs)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from tests.support.client import Client, new_room
from tests.support.procs import LOOPBACK, free_port, http_status, wait_for

from . import bases
from .conftest import CANARY, SOURCE, VERSION, Built, build, revision
from .engine import Engine

pytestmark = pytest.mark.timeout(1500)

DRAIN = 3  # PEA_DRAIN_TIMEOUT of the hardened container
GRACE = 20  # `docker stop -t`: the chart's terminationGracePeriodSeconds is longer than DRAIN
# The chart's securityContext, as docker run flags.
HARDENED = [
    "--read-only", "--tmpfs", "/tmp", "--user", "10001:10001",
    "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
]  # fmt: skip


def layers(engine: Engine, name: str) -> list[tuple[str, int]]:
    fmt = "{{json .}}"
    rows = engine.docker("history", "--no-trunc", "--format", fmt, name).stdout.splitlines()
    out = []
    for row in rows:
        r = json.loads(row)
        out.append((r["CreatedBy"], int(engine_size(r["Size"]))))
    return out


def engine_size(text: str) -> float:
    """docker's human sizes ("53.3MB", "0B") in bytes."""
    m = re.fullmatch(r"([\d.]+)\s*([kMG]?B)", text.strip())
    assert m, text
    return float(m[1]) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]]


def exported(engine: Engine, name: str) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Every entry of the image's filesystem (`docker export` of a created container)."""
    cid = engine.docker("create", name).stdout.strip()
    try:
        argv = ["/usr/bin/docker", "export", cid]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, env=engine.full_env()) as proc:
            stream: IO[bytes] | None = proc.stdout
            assert stream is not None
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    yield tar, member
            assert proc.wait(60) == 0
    finally:
        engine.docker("rm", "-f", cid, check=False)


# -- the image itself --------------------------------------------------------------------


def test_image_size_layers_and_labels(engine: Engine, image: Built) -> None:
    info = engine.inspect("image", image.name)
    base = engine.inspect("image", f"python:{bases.DEBIAN_PYTHON}-slim-bookworm")
    ours = info["Size"] - base["Size"]
    hist = layers(engine, image.name)
    print(
        f"\nimage {image.name}: {info['Size'] / 1e6:.0f} MB, {len(info['RootFS']['Layers'])} layers"
    )
    print(f"  base (Debian 12 packages): {base['Size'] / 1e6:.0f} MB")
    print(f"  added by deploy/Dockerfile: {ours / 1e6:.1f} MB")
    for created_by, size in hist:
        if size:
            print(f"  {size / 1e6:7.1f} MB  {created_by[:90]}")
    # Only the virtualenv (and a user) on top of the base: no node_modules, no toolchain.
    assert ours < 80e6, f"the image grew {ours / 1e6:.0f} MB over its base"
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001", "runs as a numeric non-root user"
    assert cfg["Cmd"] == ["pea", "serve"]
    labels = cfg["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == revision()
    assert labels["org.opencontainers.image.source"] == SOURCE
    assert labels["org.opencontainers.image.title"] == "pea"
    # No secret, and no setting that needs one, is baked into the environment.
    env = dict(e.split("=", 1) for e in cfg["Env"])
    for key in env:
        assert not re.search(r"SECRET|PASSWORD|TOKEN|REDIS_URL", key), key
    history = engine.docker("history", "--no-trunc", image.name).stdout
    assert CANARY not in history


def test_pea_version_and_user_inside(engine: Engine, image: Built) -> None:
    run = ["run", "--rm", "--network", "none", image.name]
    assert engine.docker(*run, "pea", "--version").stdout.strip() == f"pea {VERSION}"
    ident = engine.docker(*run, "id").stdout.strip()
    assert re.match(r"uid=10001\(pea\) gid=10001\(pea\)", ident), ident


def test_nothing_but_the_runtime_in_the_filesystem(engine: Engine, image: Built) -> None:
    """No secret, no stray file from the build context, no build tool, npm or pip."""
    names: set[str] = set()
    found: list[str] = []
    for tar, member in exported(engine, image.name):
        name = member.name.lstrip("./")
        names.add(name)
        if not member.isfile() or member.size > 64 << 20:
            continue
        f = tar.extractfile(member)
        assert f is not None
        data = f.read()
        if CANARY.encode() in data:
            found.append(f"{name}: a file the ignore rules keep out of the build context")
        # A PEM block with a key in it, in a file (a shared library like GnuTLS holds
        # built-in test keys).
        pem = re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40}", data)
        if pem and not data.startswith(b"\x7fELF"):
            found.append(f"{name}: a private key")
    assert not found, found
    assert "opt/pea/bin/pea" in names
    assert any(n.endswith("site-packages/pea/static/index.html") for n in names)
    for tool in ("usr/bin/node", "usr/bin/npm", "usr/bin/gcc", "usr/bin/cc", "usr/bin/make"):
        assert tool not in names, f"{tool} is in the runtime image"
    assert not [n for n in names if n.startswith("opt/pea/bin/pip")], "pip in the runtime venv"
    assert not [n for n in names if "node_modules" in n]
    assert not [n for n in names if n.startswith("src/")], "build sources in the runtime image"
    assert not [n for n in names if n.endswith(".env")]


def test_classic_builder_builds_the_same_image(engine: Engine, image: Built) -> None:
    """The classic builder reads `.dockerignore` in the context root (not the
    Dockerfile's own ignore file): a clean copy with that file in place."""
    ctx = image.context
    ignore = ctx / ".dockerignore"
    ignore.write_text((ctx / "deploy" / "Dockerfile.dockerignore").read_text())
    try:
        seconds = build(engine, ctx, "pea:classic", buildkit=False)
    finally:
        ignore.unlink()
    image.report.append(f"classic build: {seconds:.0f} s")
    print(f"\nclassic builder: {seconds:.0f} s")
    run = ["run", "--rm", "--network", "none", *HARDENED, "pea:classic"]
    assert engine.docker(*run, "pea", "--version").stdout.strip() == f"pea {VERSION}"
    code = (
        "import importlib.resources as r; "
        "print(sorted(p.name for p in r.files('pea').joinpath('static').iterdir()))"
    )
    static = engine.docker(*run, "python", "-c", code).stdout
    assert "index.html" in static and "stale-canary" not in static, static
    cfg = engine.inspect("image", "pea:classic")["Config"]
    assert (
        cfg["User"] == "10001:10001"
        and cfg["Labels"]["org.opencontainers.image.version"] == VERSION
    )
    # pea:classic stays: its layers are the classic builder's cache for the next run.


# -- the hardened run --------------------------------------------------------------------


@dataclass
class Running:
    name: str
    port: int
    started: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


@pytest.fixture(scope="module")
def hardened(engine: Engine, image: Built) -> Iterator[Running]:
    port, metrics = free_port(), free_port()
    name = "pea-hardened"
    engine.docker("rm", "-f", name, check=False)
    engine.docker(
        "run", "--detach", "--name", name, *HARDENED, "--network", "host",
        "-e", f"PEA_HOST={LOOPBACK}", "-e", f"PEA_PORT={port}", "-e", f"PEA_METRICS_PORT={metrics}",
        "-e", f"PEA_DRAIN_TIMEOUT={DRAIN}", image.name,
    )  # fmt: skip
    r = Running(name, port, time.monotonic())
    try:
        wait_for(lambda: http_status(r.url + "/healthz") == 200, 60, "the container's /healthz")
        yield r
    finally:
        logs = engine.docker("logs", name, check=False).stderr
        print(f"--- {name} logs\n{logs[-3000:]}")
        engine.docker("rm", "-f", name, check=False)


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return int(resp.status), resp.read().decode(errors="replace")


def test_health_readiness_and_web_client(hardened: Running) -> None:
    assert http_status(hardened.url + "/healthz") == 200
    assert http_status(hardened.url + "/readyz") == 200
    status, page = get(hardened.url + "/")
    assert status == 200 and "<html" in page.lower()
    # Every script and stylesheet the page names is served from the packaged bundle.
    assets = re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', page)
    assert assets, page[:500]
    for asset in assets:
        assert get(hardened.url + asset)[0] == 200, asset


async def test_websocket_join_and_signal(hardened: Running) -> None:
    ws = f"ws://{LOOPBACK}:{hardened.port}/ws"
    room = new_room()
    a = await Client.open(ws)
    b = await Client.open(ws)
    try:
        await a.join(room, name="a")
        welcome = await b.join(room, name="b")
        assert [p["peer"] for p in welcome["peers"]] == [a.id]
        joined = await a.wait_for("peer-joined")
        assert joined["peer"] == b.id
        assert b.id is not None
        await a.signal(b.id, {"sdp": "offer"})
        got = await b.wait_for("signal")
        assert got["from"] == a.id and got["data"] == {"sdp": "offer"}
    finally:
        await a.close()
        await b.close()


def test_healthcheck_turns_healthy(engine: Engine, hardened: Running) -> None:
    def status() -> str:
        state = engine.inspect("container", hardened.name)["State"]
        return str(state.get("Health", {}).get("Status"))

    # The image's own HEALTHCHECK: first run after its 10 s interval.
    wait_for(lambda: status() == "healthy", 60, "the HEALTHCHECK to report healthy", 0.5)
    log = engine.inspect("container", hardened.name)["State"]["Health"]["Log"]
    assert log and log[-1]["ExitCode"] == 0, log


async def test_docker_stop_drains_and_exits_zero(engine: Engine, hardened: Running) -> None:
    """docker stop sends SIGTERM: a connected peer is told to reconnect and closed with
    1012, and the container exits 0 well within the grace period. Nothing was written
    outside /tmp meanwhile (`docker diff` does not list the tmpfs)."""
    client = await Client.open(f"ws://{LOOPBACK}:{hardened.port}/ws")
    await client.join(new_room())
    started = time.monotonic()
    stop = asyncio.create_task(
        asyncio.to_thread(
            engine.docker, "stop", "-t", str(GRACE), hardened.name, timeout=GRACE + 30
        )
    )
    frame = await client.wait_for("reconnect", timeout=GRACE)
    assert 0 <= frame["after_ms"] <= 60_000
    await asyncio.wait_for(client.ws.wait_closed(), GRACE)
    assert client.ws.close_code == 1012
    await client.close()
    await stop
    took = time.monotonic() - started
    state = engine.inspect("container", hardened.name)["State"]
    assert state["ExitCode"] == 0 and not state["OOMKilled"], state
    assert took < GRACE, f"docker stop took {took:.1f} s: killed at the grace period?"
    logs = engine.docker("logs", hardened.name).stderr
    assert "drain complete" in logs, logs[-2000:]
    diff = engine.docker("diff", hardened.name).stdout.strip()
    assert diff == "", f"written outside /tmp:\n{diff}"
