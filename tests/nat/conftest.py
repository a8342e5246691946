"""Fixtures of the NAT lab (tests/nat/lab.py): the namespaces, coturn, pea nodes, and a
browser per engine in each home, all made once per session and torn down even on failure.

Needs root (network namespaces), iptables, conntrack, coturn (`make nat-deps`) and
the web bundle; without them the lab's tests skip and say what is missing.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.nat.homes import Home
from tests.nat.lab import NODE_IPS, STUN_IPS, Lab, lab
from tests.support.browser import CHROMIUM, FIREFOX
from tests.support.pages import STATIC
from tests.support.procs import Proc, node_env, pea_exe, wait_for

TURN_SECRET = "lab-turn-secret-" + os.urandom(8).hex()
NODE_PORT, METRICS_PORT = 8080, 9090


def _missing() -> str | None:
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the NAT lab needs root on Linux (network namespaces)"
    for tool in ("ip", "iptables", "conntrack", "turnserver"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is missing (make nat-deps)"
    if not STATIC.is_file():
        return "the web bundle is not built (make web)"
    if CHROMIUM is None or FIREFOX is None:
        return "Debian chromium and firefox-esr are needed (make system-deps)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    for item in items:
        if reason and "tests/nat/" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Node:
    """A pea node in the lab's internet, reached by both homes through their NATs."""

    proc: Proc
    ip: str

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{NODE_PORT}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.ip}:{METRICS_PORT}/metrics"


@dataclass
class World:
    lab: Lab
    direct: Node
    """STUN only, as pea ships (TURN off)."""
    relay: Node
    """The lab's coturn as TURN over UDP too, with short-lived credentials."""
    relay_tcp: Node
    """As `relay`, but TURN over TCP only: what is left where no UDP gets out."""
    homes: dict[str, Home]


def _node(the_lab: Lab, ip: str, **settings: str) -> Node:
    env = node_env(
        ice_servers=f'[{{"urls": ["stun:{STUN_IPS[0]}:3478"]}}]', log_level="warning", **settings
    )
    argv = [pea_exe(), "serve", "--host", ip, "--port", str(NODE_PORT)]
    proc = the_lab.start("inet", f"pea-{ip}", [*argv, "--metrics-port", str(METRICS_PORT)], env)
    node = Node(proc, ip)

    def ready() -> bool:
        proc.exited()
        got = the_lab.get("inet", node.url + "/readyz")
        return got is not None and got[0] == 200

    wait_for(ready, 30, f"pea node on {ip}")
    return node


def _relay_node(the_lab: Lab, ip: str, transport: str) -> Node:
    """A node that hands out the lab's coturn as TURN over `transport` only."""
    turn = f"turn:{STUN_IPS[0]}:3478?transport={transport}"
    return _node(the_lab, ip, turn_urls=turn, turn_secret=TURN_SECRET, turn_ttl="600")


def _coturn(the_lab: Lab, workdir: Path) -> None:
    """coturn as STUN (two addresses, two ports: RFC 5780 behaviour discovery) and as TURN
    over UDP and TCP with TURN REST credentials (use-auth-secret), relaying from .10 only."""
    argv = ["turnserver", "-n", "--no-cli", "--no-tls", "--no-dtls",
            "--log-file", "stdout", "--simple-log", "--pidfile", str(workdir / "turn.pid"),
            "-L", STUN_IPS[0], "-L", STUN_IPS[1], "--listening-port", "3478",
            "--alt-listening-port", "3479", "--relay-ip", STUN_IPS[0],
            "--min-port", "50000", "--max-port", "50100", "--realm", "pea.test",
            "--use-auth-secret", "--static-auth-secret", TURN_SECRET]  # fmt: skip
    proc = the_lab.start("inet", "coturn", argv)

    def listening() -> bool:
        proc.exited()
        # The namespace's UDP sockets; 0D96 is port 3478.
        return ":0D96" in Path(f"/proc/{proc.pid}/net/udp").read_text()

    wait_for(listening, 15, "coturn to listen")


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory(prefix="pea-nat-") as tmp, lab() as the_lab:
        work = Path(tmp)
        homes = {side: Home(the_lab, f"home-{side}", work / side) for side in ("a", "b")}
        # Both browsers start while the servers do: each takes seconds.
        starting = [homes["a"].thread.submit(homes["a"].browser, "chromium"),
                    homes["b"].thread.submit(homes["b"].browser, "firefox")]  # fmt: skip
        try:
            _coturn(the_lab, work)
            direct = _node(the_lab, NODE_IPS[0])
            relay = _relay_node(the_lab, NODE_IPS[1], "udp")
            relay_tcp = _relay_node(the_lab, NODE_IPS[2], "tcp")
            for started in starting:
                started.result(120)
            yield World(the_lab, direct, relay, relay_tcp, homes)
        finally:
            for home in homes.values():
                home.close()
