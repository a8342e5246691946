"""Peers that signal through a rolling restart, and the check that nobody noticed it.

Each peer behaves like the web client: on `reconnect` or a 1012 close it
reconnects to the same URL and joins with its room and the `resume` token of its
last `welcome`. After the restarts nobody may have seen `peer-left` (or a second
`peer-joined`) for a peer that resumed, every peer keeps its id and its room, and
signals arrive in order. Used by tests/deploy/test_rolling_restart.py (`make
cluster`) and tests/image/stack/inside.py (the compose stack).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.support.client import encode, join_frame, new_room, signal_frame

DELIVERY_TIMEOUT = 15.0
CHATTER_ROUNDS = 100
"""Rounds of the signals sent while a node restarts start here."""


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


@dataclass
class Pairs:
    """Two peers a room, all joined; `original` is each peer's first id."""

    peers: list[Peer]
    original: dict[int, str | None]
    setup_done: float


def make_pairs(ws_url: str, rooms: int) -> list[Peer]:
    """Two peers a room, partners of each other; even indices join first."""
    peers: list[Peer] = []
    for r in range(rooms):
        room = new_room()
        a, b = Peer(2 * r, room, ws_url), Peer(2 * r + 1, room, ws_url)
        a.partner, b.partner = b, a
        peers += [a, b]
    return peers


async def join_pairs(peers: list[Peer]) -> Pairs:
    """The first peer of each room, then the second; then a round of signals."""
    firsts, seconds = peers[0::2], peers[1::2]
    for group in (firsts, seconds):
        for p in group:
            p.task = asyncio.create_task(p.run())
        await all_settled(group, 60, "initial join")
    deadline = time.monotonic() + 15
    while not all(p.kinds_seen("peer-joined") for p in firsts):
        assert time.monotonic() < deadline, "first peers did not see their partner join"
        await asyncio.sleep(0.05)
    pairs = Pairs(peers, {p.index: p.peer_id for p in peers}, time.monotonic())
    await signal_round(peers, 0)
    return pairs


async def restart_while_chatting(
    peers: list[Peer],
    round_: int,
    restart: Callable[[], Awaitable[float]],
    on_node: float,
    node: str,
    settle_timeout: float,
) -> tuple[int, float]:
    """Restart a node (`restart()` returns the seconds to report) while peers signal,
    wait for everyone to be back, then a round of signals: (reconnects, seconds)."""
    assert on_node > 0, f"{node} holds no peers: the test would prove nothing"
    before = sum(p.reconnects for p in peers)
    stop_chatter = asyncio.Event()
    chatting = asyncio.create_task(chatter(peers, CHATTER_ROUNDS + round_, stop_chatter))
    seconds = await restart()
    await all_settled(peers, settle_timeout, f"after restarting {node}")
    stop_chatter.set()
    await chatting
    moved = sum(p.reconnects for p in peers) - before
    assert moved >= on_node, f"{node} had {on_node} peers, {moved} reconnected"
    await signal_round(peers, round_ + 1)
    return moved, seconds


def assert_nobody_noticed(pairs: Pairs) -> None:
    """No peer-left, no second peer-joined, same ids, no errors, signals in order."""
    for p in pairs.peers:
        assert not p.kinds_seen("peer-left"), (p.index, p.kinds_seen("peer-left"))
        assert not p.kinds_seen("peer-joined", since=pairs.setup_done), p.index
        assert {w["peer"] for w in p.welcomes} == {pairs.original[p.index]}, p.index
        assert p.errors == [], (p.index, p.errors)
        assert p.reconnects >= 1, f"peer {p.index} was never moved"
        seqs = [s for _, s in p.received]
        assert seqs == sorted(set(seqs)), f"peer {p.index}: signals out of order {seqs}"
