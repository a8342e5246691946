"""Zero-downtime rolling restart on `make cluster`: 200 peers, 100 rooms, through nginx.

Each node in turn gets SIGTERM (it drains: `reconnect` then a 1012 close), exits
and starts again, while the peers of tests/support/rolling.py signal through it:
nobody may notice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from functools import partial

import pytest
from websockets.asyncio.client import connect

from deploy.cluster.run import Cluster, cluster
from tests.support.client import encode, join_frame
from tests.support.procs import PeaNode, wait_for_async
from tests.support.rolling import (
    CHATTER_ROUNDS,
    assert_nobody_noticed,
    join_pairs,
    make_pairs,
    restart_while_chatting,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

ROOMS = 100
DRAIN_TIMEOUT = 10.0
SETTLE_TIMEOUT = 40.0  # all peers back and welcomed after a node restart


@pytest.fixture(scope="module")
def nodes3() -> Iterator[Cluster]:
    with cluster(
        nodes=3,
        drain_timeout=DRAIN_TIMEOUT,
        resume_grace=15,
        # 200 peers from one address (loopback, through nginx): lift the per-client limit.
        extra_env={"PEA_MAX_CONNECTIONS_PER_CLIENT": "0"},
    ) as c:
        yield c


def stopped(node: PeaNode) -> bool:
    return not node.running


async def restart(node: PeaNode) -> float:
    """SIGTERM, a clean exit after draining, a new start: the seconds it drained."""
    started = time.monotonic()
    node.terminate()
    await wait_for_async(partial(stopped, node), DRAIN_TIMEOUT + 10, f"{node.name} exit")
    drained = time.monotonic() - started
    assert node.proc is not None and node.proc.returncode == 0, node.log_text()[-3000:]
    node.start(wait_ready=False)
    await wait_for_async(node.ready, 30, "ready")
    return drained


async def test_rolling_restart_is_invisible(nodes3: Cluster) -> None:
    c = nodes3
    peers = make_pairs(c.ws_url, ROOMS)
    firsts = peers[0::2]
    try:
        pairs = await join_pairs(peers)
        original = pairs.original
        assert len(set(original.values())) == len(peers)

        timings = []
        for i, node in enumerate(c.nodes):
            on_node = node.metric("pea_peers")
            moved, drained = await restart_while_chatting(
                peers, i, partial(restart, node), on_node, node.name, SETTLE_TIMEOUT
            )
            timings.append((node.name, int(on_node), moved, round(drained, 2)))

        assert_nobody_noticed(pairs)
        chatter_seen = 0
        for p in peers:
            chatter_seen += sum(1 for r, _ in p.received if r >= CHATTER_ROUNDS)
            # Resumed welcomes list the partner: both are still in the room.
            for w in p.welcomes[1:]:
                assert original[p.partner.index] in {x["peer"] for x in w["peers"]}  # type: ignore[union-attr]
        assert chatter_seen > 0, "no signal was relayed while nodes restarted"
        # Every peer is in its room at the end, as a newcomer sees it.
        for a in firsts[:: max(1, ROOMS // 25)]:
            async with connect(c.ws_url, open_timeout=5) as ws:
                await ws.send(encode(join_frame(a.room)))
                async with asyncio.timeout(5):
                    while (msg := json.loads(await ws.recv()))["type"] != "welcome":
                        pass
                seen = {x["peer"] for x in msg["peers"]}
                assert seen == {a.peer_id, a.partner.peer_id}, (a.index, seen)  # type: ignore[union-attr]
        print("rolling restart (node, peers on it, reconnects, drain s):", timings)
        print(f"signals relayed while nodes restarted: {chatter_seen}")
    except BaseException:
        errlog = (c.workdir / "error.log").read_text(errors="replace").splitlines()
        print("\n".join([x for x in errlog if "no live upstreams" not in x][:60]))
        print(f"... and {sum('no live upstreams' in x for x in errlog)} 'no live upstreams'")
        for n in c.nodes:
            print(f"--- {n.name}\n" + "\n".join(n.log_text().splitlines()[-30:]))
        raise
    finally:
        await asyncio.gather(*(p.stop() for p in peers))
