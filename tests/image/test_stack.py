"""`docker compose up` of deploy/compose.yaml for real: Redis, three pea nodes, nginx.

The engine runs inside a network namespace made for this module (only `lo` up),
so the stack's network (a documentation range, given as PEA_SUBNET) and nginx's
published port exist there and nowhere else; the browser and the WebSocket load
(stack/inside.py) run in that namespace too. Compose v2 reads the real file; the
only additions are the environment file (secrets, subnet, port) and an override
that turns off STUN (nothing to reach) and the per-client limit (every test client
comes through nginx from one address).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.procs import ROOT

from . import bases
from .conftest import Built
from .engine import DOCKER, Engine, netns

pytestmark = pytest.mark.timeout(1500)

SUBNET = "198.51.100.0/24"
PORT = 8080  # on the namespace's own loopback
OVERRIDE = {
    "services": {
        n: {"environment": {"PEA_ICE_SERVERS": "[]", "PEA_MAX_CONNECTIONS_PER_CLIENT": "0"}}
        for n in ("pea1", "pea2", "pea3")
    }
}


@dataclass
class Stack:
    ns: str
    compose: list[str]
    url: str


def compose_file(context: Path) -> Path:
    return context / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def stack(
    engine: Engine, image: Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    spec = yaml.safe_load(compose_file(image.context).read_text())
    engine.use(None)
    report = bases.ensure(engine, bases.compose_bases(spec))
    if report:
        print("\n" + "\n".join(report))
    env_file = tmp / "stack.env"
    env_file.write_text(
        f"PEA_SECRET={secrets.token_hex(32)}\nREDIS_PASSWORD={secrets.token_hex(32)}\n"
        f"PEA_SUBNET={SUBNET}\nPEA_HTTP_PORT=127.0.0.1:{PORT}\n"
        f"PEA_PUBLIC_URL=http://127.0.0.1:{PORT}\n"
    )
    override = tmp / "override.yaml"
    override.write_text(yaml.safe_dump(OVERRIDE))
    argv = [
        DOCKER, "compose", "--env-file", str(env_file),
        "-f", str(compose_file(image.context)), "-f", str(override),
    ]  # fmt: skip
    with netns(f"pea-image-{os.getpid()}-stack") as ns:
        engine.use(ns)
        s = Stack(ns, argv, f"http://127.0.0.1:{PORT}")
        try:
            started = time.monotonic()
            up = run(
                engine,
                s,
                "up",
                "--detach",
                "--wait",
                "--wait-timeout",
                "120",
                timeout=180,
                check=False,
            )
            if up.returncode != 0:
                print(run(engine, s, "logs", "--tail", "30", check=False).stdout[-6000:])
                for cid in engine.docker("ps", "-aq").stdout.split():
                    health = engine.inspect("container", cid)["State"].get("Health", {})
                    print(cid, json.dumps(health.get("Log", [])[-3:])[:1500])
                pytest.fail(f"compose up:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
            took = time.monotonic() - started
            print(f"\ncompose up (redis, 3 nodes, nginx) healthy in {took:.0f} s")
            yield s
        finally:
            run(engine, s, "down", "--volumes", "--remove-orphans", "--timeout", "30", check=False)
            engine.stop()


def run(
    engine: Engine, s: Stack, *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [*s.compose, *args], env=engine.full_env(), capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    if check:
        assert out.returncode == 0, (
            f"compose {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out


def inside(engine: Engine, s: Stack, test: str) -> None:
    """Run one test of stack/inside.py in the stack's namespace."""
    env = {
        **engine.full_env(),
        "PEA_STACK_URL": s.url,
        "PEA_STACK_COMPOSE": json.dumps(s.compose),
    }
    argv = [
        "ip", "netns", "exec", s.ns, sys.executable, "-m", "pytest", "-q", "-s",
        "-p", "no:cacheprovider", "--no-cov", f"tests/image/stack/inside.py::{test}",
    ]  # fmt: skip
    out = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=500, check=False
    )
    print(out.stdout[-4000:])
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout[-8000:] + out.stderr[-3000:]


def test_compose_v2_reads_the_file(engine: Engine, stack: Stack) -> None:
    cfg = json.loads(run(engine, stack, "config", "--format", "json").stdout)
    assert set(cfg["services"]) == {"redis", "pea1", "pea2", "pea3", "nginx"}
    ps = [
        json.loads(line)
        for line in run(engine, stack, "ps", "--format", "json").stdout.splitlines()
    ]
    health = {c["Service"]: c["Health"] for c in ps}
    assert health == {
        "redis": "healthy",
        "pea1": "healthy",
        "pea2": "healthy",
        "pea3": "healthy",
        "nginx": "",
    }, health


def test_browser_transfer_through_nginx(engine: Engine, stack: Stack) -> None:
    inside(engine, stack, "test_browser_transfer_through_nginx_between_two_nodes")


def test_rolling_restart_under_load(engine: Engine, stack: Stack) -> None:
    inside(engine, stack, "test_rolling_restart_of_every_node_is_invisible")


def test_down_leaves_nothing_behind(engine: Engine, stack: Stack) -> None:
    run(engine, stack, "down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    networks = engine.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert sorted(networks) == ["host", "none"], networks
    assert engine.docker("volume", "ls", "-q").stdout.strip() == ""
    links = subprocess.run(
        ["ip", "-n", stack.ns, "-o", "link"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
