"""`make cluster` (deploy/cluster/run.py): three nodes behind nginx on loopback."""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from collections.abc import Iterator

import psutil
import pytest

from deploy.cluster.run import Cluster, cluster
from tests.support.client import Client, new_room
from tests.support.procs import Proc, free_port, http_status, wait_for

from .helpers import ROOT

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def three() -> Iterator[Cluster]:
    with cluster(nodes=3, drain_timeout=3) as c:
        yield c


def test_serves_through_nginx(three: Cluster) -> None:
    assert [http_status(three.url + "/readyz") for _ in range(6)] == [200] * 6
    assert http_status(three.url + "/healthz") == 200
    with urllib.request.urlopen(three.url + "/", timeout=5) as resp:
        assert resp.status == 200
        assert "text/html" in resp.headers["content-type"]


async def test_round_robin_websockets_and_relay_across_nodes(three: Cluster) -> None:
    """30 WebSockets through nginx land on all three nodes, and peers meet across them."""
    rid = new_room()
    clients = [await Client.open(three.ws_url, timeout=5) for _ in range(30)]
    try:
        counts = [n.metric("pea_connections") for n in three.nodes]
        assert sum(counts) == 30, counts
        assert all(c >= 5 for c in counts), f"round robin, no stickiness: {counts}"
        # Every peer joins one room; the last one's welcome lists all the others,
        # although they sit on three different nodes.
        for c in clients[:12]:
            await c.join(rid)
        first, last = clients[0], clients[11]
        assert first.id is not None
        await last.signal(first.id, {"n": 1})
        got = await first.wait_for("signal", timeout=5)
        assert got == {"type": "signal", "from": last.id, "data": {"n": 1}}
    finally:
        for c in clients:
            await c.close()


def test_node_restart_keeps_serving(three: Cluster) -> None:
    """While one node restarts, nginx keeps answering through the others."""
    node = three.nodes[1]
    node.terminate()
    statuses = []
    deadline = time.monotonic() + 15
    while node.running and time.monotonic() < deadline:
        statuses.append(http_status(three.url + "/healthz", timeout=2))
        time.sleep(0.02)
    assert not node.running, "node did not stop within 15 s"
    assert node.proc is not None and node.proc.returncode == 0, node.log_text()[-2000:]
    statuses += [http_status(three.url + "/healthz", timeout=2) for _ in range(10)]
    assert set(statuses) == {200}, statuses
    node.start()


def test_cli_starts_and_ctrl_c_stops_everything() -> None:
    """`python -m deploy.cluster.run` (what make cluster runs), then SIGINT: all children gone."""
    port = free_port()
    argv = [sys.executable, "-m", "deploy.cluster.run", "--port", str(port), "--drain-timeout", "2"]
    proc = Proc("make-cluster", argv, env={"PYTHONPATH": str(ROOT)})
    proc.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_status(url + "/readyz") == 200, 40, "make cluster")
        children = psutil.Process(proc.pid).children()
        names = sorted(c.name() for c in children)
        assert names.count("nginx") >= 1 and names.count("redis-server") == 1, names
        assert sum(1 for n in names if n.startswith("pea")) == 3, names
        code = proc.stop(30, signal.SIGINT)
        out = proc.log_text()
    finally:
        proc.stop(10, signal.SIGKILL)
        proc.remove_log()
    assert code == 0, out
    assert "pea cluster ready: open http://127.0.0.1:" in out
    assert "cluster stopped" in out
    alive = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left running: {alive}"
    assert http_status(url + "/healthz") is None
