"""Zero-downtime rolling restart on `make cluster`: 200 peers, 100 rooms, through nginx.

Each node in turn gets SIGTERM (it drains: `reconnect` then a 1012 close), exits
and starts again. Peers behave like the web client: on `reconnect` or a 1012
close they reconnect to the nginx URL and join with their room and the `resume`
token of their last `welcome`. Nobody may see `peer-left` (or a second
`peer-joined`) for a peer that resumed, every peer keeps its id and its room,
and signals sent after each restart arrive, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from deploy.cluster.run import Cluster, cluster
from tests.support.client import encode, join_frame, new_room, signal_frame
from tests.support.procs import PeaNode, wait_for_async

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

ROOMS = 100
DRAIN_TIMEOUT = 10.0
SETTLE_TIMEOUT = 40.0  # all peers back and welcomed after a node restart
DELIVERY_TIMEOUT = 15.0


@dataclass
class Peer:
    index: int
    room: str
    url: str
    partner: Peer | None = None
    peer_id: str | None = None
    resume: str | None = None
    ws: ClientConnection | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)
    welcomes: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    received: list[tuple[int, int]] = field(default_factory=list)  # (round, seq)
    sent_seq: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    task: asyncio.Task[None] | None = None
    stopping: bool = False
    last_failure: str = ""

    async def run(self) -> None:
        """Stay connected and joined until stopped; reconnect and resume when told to."""
        backoff = 0.05
        while not self.stopping:
            try:
                ws = await connect(self.url, open_timeout=5, close_timeout=2, max_queue=None)
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError) as exc:
                self.connect_failures += 1
                self.last_failure = repr(exc)
                assert self.connect_failures < 200, f"peer {self.index} cannot connect"
                await asyncio.sleep(backoff + random.random() * backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self.ws = ws
            try:
                resume = {"resume": self.resume} if self.resume else {}
                await ws.send(encode(join_frame(self.room, name=f"peer-{self.index}", **resume)))
                await self._read(ws)
            except ConnectionClosed:
                pass
            finally:
                self.settled.clear()
                self.ws = None
                if ws.state.name == "OPEN" and not self.stopping:
                    # Not a departure: any code but 1000/1001 keeps us in the room.
                    await ws.close(4000, "reconnecting")
            if not self.stopping:
                self.reconnects += 1

    async def _read(self, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = json.loads(raw)
            kind = msg["type"]
            if kind == "welcome":
                self.welcomes.append(msg)
                if self.peer_id is None:
                    self.peer_id = msg["peer"]
                self.resume = msg["resume"]
                self.settled.set()
            elif kind == "signal":
                data = msg["data"]
                assert self.partner is not None and msg["from"] == self.partner.peer_id, msg
                self.received.append((data["round"], data["seq"]))
            elif kind == "reconnect":
                # The node drains: wait for its 1012 close (bounded), then come back.
                self.settled.clear()
                self.events.append((time.monotonic(), msg))
                with contextlib.suppress(TimeoutError, ConnectionClosed):
                    async with asyncio.timeout(5):
                        async for _ in ws:
                            pass
                await asyncio.sleep(min(msg.get("after_ms", 0), 2000) / 1000)
                return
            elif kind == "error":
                self.errors.append(msg)
            else:
                self.events.append((time.monotonic(), msg))

    async def send_signal(self, round_: int) -> None:
        assert self.partner is not None and self.partner.peer_id is not None
        ws = self.ws
        assert ws is not None and self.settled.is_set(), f"peer {self.index} is not connected"
        self.sent_seq += 1
        data = {"round": round_, "seq": self.sent_seq}
        await ws.send(encode(signal_frame(self.partner.peer_id, data)))

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close(1000, "test over")
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    def kinds_seen(self, kind: str, since: float = 0.0) -> list[dict[str, Any]]:
        return [m for t, m in self.events if m["type"] == kind and t >= since]


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


async def all_settled(peers: list[Peer], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(p.settled.wait() for p in peers))
    except TimeoutError:
        missing = [p for p in peers if not p.settled.is_set()]
        detail = [
            (
                p.index,
                p.reconnects,
                p.connect_failures,
                p.last_failure[:200],
                p.task.exception() if p.task and p.task.done() else None,
            )
            for p in missing[:10]
        ]
        raise AssertionError(
            f"{what}: {len(missing)} peers not back (index, reconnects, connect failures, "
            f"last failure, crash): {detail}"
        ) from None


async def signal_round(peers: list[Peer], round_: int) -> None:
    """Every peer signals its partner once; every signal arrives."""
    await asyncio.gather(*(p.send_signal(round_) for p in peers))
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        if all(any(r == round_ for r, _ in p.received) for p in peers):
            return
        await asyncio.sleep(0.05)
    lost = [p.index for p in peers if not any(r == round_ for r, _ in p.received)]
    errors = [e for p in peers for e in p.errors][:5]
    raise AssertionError(f"round {round_}: signals to {len(lost)} peers lost {lost[:20]} {errors}")


async def chatter(peers: list[Peer], round_: int, stop: asyncio.Event) -> None:
    """Signals from random connected peers while a node restarts: they may be lost
    while the receiver reconnects, but never reordered or duplicated."""
    while not stop.is_set():
        p = random.choice(peers)
        if p.settled.is_set() and p.partner is not None and p.partner.settled.is_set():
            with contextlib.suppress(ConnectionClosed, AssertionError):
                await p.send_signal(round_)
        await asyncio.sleep(0.005)


def stopped(node: PeaNode) -> bool:
    return not node.running


async def test_rolling_restart_is_invisible(nodes3: Cluster) -> None:
    c = nodes3
    peers: list[Peer] = []
    for r in range(ROOMS):
        room = new_room()
        a, b = Peer(2 * r, room, c.ws_url), Peer(2 * r + 1, room, c.ws_url)
        a.partner, b.partner = b, a
        peers += [a, b]
    firsts, seconds = peers[0::2], peers[1::2]
    try:
        # Setup: the first peer of each room, then the second.
        for group in (firsts, seconds):
            for p in group:
                p.task = asyncio.create_task(p.run())
            await all_settled(group, 60, "initial join")
        deadline = time.monotonic() + 15
        while not all(p.kinds_seen("peer-joined") for p in firsts):
            assert time.monotonic() < deadline, "first peers did not see their partner join"
            await asyncio.sleep(0.05)
        original = {p.index: p.peer_id for p in peers}
        assert len(set(original.values())) == len(peers)
        setup_done = time.monotonic()
        await signal_round(peers, 0)

        timings = []
        for i, node in enumerate(c.nodes):
            on_node = node.metric("pea_peers")
            assert on_node > 0, f"{node.name} holds no peers: the test would prove nothing"
            before = sum(p.reconnects for p in peers)
            started = time.monotonic()
            stop_chatter = asyncio.Event()
            chatting = asyncio.create_task(chatter(peers, 100 + i, stop_chatter))
            node.terminate()
            await wait_for_async(partial(stopped, node), DRAIN_TIMEOUT + 10, f"{node.name} exit")
            drained = time.monotonic() - started
            assert node.proc is not None and node.proc.returncode == 0, node.log_text()[-3000:]
            node.start(wait_ready=False)
            await wait_for_async(node.ready, 30, "ready")
            await all_settled(peers, SETTLE_TIMEOUT, f"after restarting {node.name}")
            stop_chatter.set()
            await chatting
            moved = sum(p.reconnects for p in peers) - before
            assert moved >= on_node, f"{node.name} had {on_node} peers, {moved} reconnected"
            await signal_round(peers, i + 1)
            timings.append((node.name, int(on_node), moved, round(drained, 2)))

        chatter_seen = 0
        # Nobody noticed: no peer-left, no second peer-joined, same ids, no errors.
        for p in peers:
            assert not p.kinds_seen("peer-left"), (p.index, p.kinds_seen("peer-left"))
            assert not p.kinds_seen("peer-joined", since=setup_done), p.index
            assert {w["peer"] for w in p.welcomes} == {original[p.index]}, p.index
            assert p.errors == [], (p.index, p.errors)
            assert p.reconnects >= 1, f"peer {p.index} was never moved"
            seqs = [s for _, s in p.received]
            chatter_seen += sum(1 for r, _ in p.received if r >= 100)
            assert seqs == sorted(set(seqs)), f"peer {p.index}: signals out of order {seqs}"
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
