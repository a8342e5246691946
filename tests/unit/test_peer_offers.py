"""`pea send` offers once per receiver's connection attempt: on `peer-joined`, and on a
`hello` from a peer it has no connection with. A hello that overtook its peer-joined
must not bring a second offer: the two offers' answers cross, and neither connection is
ever made (the stall `pea receive` showed in about 1 connection in 100)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

pytest.importorskip("aiortc")

from pea.peer.auth import SignalAuth
from pea.peer.files import Catalogue
from pea.peer.progress import Reporter
from pea.peer.share import Sharer


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


@pytest.fixture
async def sharer() -> AsyncIterator[tuple[Sharer, list[tuple[str, str]]]]:
    s = Sharer(Catalogue(), "http://127.0.0.1:9", Recorder(), connect_timeout=30)
    sent: list[tuple[str, str]] = []

    async def record(to: str, kind: str, payload: str) -> None:
        sent.append((to, kind))

    s._send = record  # type: ignore[method-assign]
    s.sig.peer = "the-sharer"
    try:
        yield s, sent
    finally:
        for r in s.receivers.values():
            await r.link.close()
        for t in list(s.tasks):
            t.cancel()


def hello(s: Sharer, peer: str) -> dict[str, Any]:
    """A receiver's `hello`, signed as a receiver holding the link signs it."""
    data = SignalAuth(s.share.secret).seal("hello", peer, s.sig.peer, "receiver")
    return {"type": "signal", "from": peer, "data": data}


async def offers(sent: list[tuple[str, str]], n: int) -> list[str]:
    for _ in range(200):  # aiortc gathers candidates before the offer goes out
        if len([k for _, k in sent if k == "offer"]) >= n:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # and nothing more comes
    return [to for to, k in sent if k == "offer"]


async def test_peer_joined_then_hello_one_offer(
    sharer: tuple[Sharer, list[tuple[str, str]]],
) -> None:
    s, sent = sharer
    await s.on_frame({"type": "peer-joined", "peer": "r1"})
    await s.on_frame(hello(s, "r1"))
    assert await offers(sent, 1) == ["r1"]


async def test_a_hello_that_overtook_its_peer_joined_one_offer(
    sharer: tuple[Sharer, list[tuple[str, str]]],
) -> None:
    s, sent = sharer
    await s.on_frame(hello(s, "r1"))
    first = s.receivers["r1"].link
    await s.on_frame({"type": "peer-joined", "peer": "r1"})
    assert await offers(sent, 1) == ["r1"]
    assert s.receivers["r1"].link is first  # the attempt under way is kept
    events = cast(Recorder, s.report).events
    states = [e["state"] for e in events if e["event"] == "receiver"]
    assert states == ["connecting"]


async def test_after_a_failed_attempt_a_hello_gets_a_new_offer(
    sharer: tuple[Sharer, list[tuple[str, str]]],
) -> None:
    s, sent = sharer
    await s.on_frame({"type": "peer-joined", "peer": "r1"})
    assert await offers(sent, 1) == ["r1"]
    s.receivers["r1"].state = "failed"  # as _connect sets it when the link fails
    await s.on_frame(hello(s, "r1"))
    assert await offers(sent, 2) == ["r1", "r1"]
