"""The command-line peer reports how each direct connection ended (signalling 1.1
`outcome`), as the web client does: once per attempt, when it connects or fails, and
only to a node that announced protocol 1.1 or a later 1.x."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aioice.ice
import pytest

from pea.peer.rtc import PeerLink, best
from pea.peer.signalling import Signalling


class FakeWs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, raw: str) -> None:
        self.sent.append(json.loads(raw))


def joined(protocol: object) -> tuple[Signalling, FakeWs]:
    async def ignore(frame: dict[str, Any]) -> None:
        pass

    sig = Signalling("ws://127.0.0.1:9/ws", "room", ignore)
    ws = FakeWs()
    sig.ws = ws  # type: ignore[assignment]
    sig.config = {} if protocol is None else {"protocol": protocol}
    return sig, ws


@pytest.mark.parametrize(
    ("protocol", "sent"),
    [(None, False), ("1.0", False), ("1.1", True), ("1.12", True), ("2.0", False), (1.1, False)],
)
async def test_outcome_goes_only_to_a_node_that_announced_1_1(protocol: object, sent: bool) -> None:
    sig, ws = joined(protocol)
    await sig.outcome({"result": "connected", "local": "host", "remote": "host"})
    want = [{"type": "outcome", "result": "connected", "local": "host", "remote": "host"}]
    assert ws.sent == (want if sent else [])


def test_best_candidate_type_ranks_relay_first() -> None:
    assert best(["host", "srflx", "prflx"]) == "srflx"
    assert best(["host", "relay", "srflx"]) == "relay"
    assert best(["host", "prflx"]) == "prflx"
    assert best(["nonsense"]) == best([]) == "none"


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates on 127.0.0.1 only: the test talks to nothing but loopback."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda **_: ["127.0.0.1"])


async def test_a_connection_is_reported_once_with_the_pair_in_use(loopback_only: None) -> None:
    reports: dict[str, list[dict[str, Any]]] = {"offerer": [], "answerer": []}
    links: dict[str, PeerLink] = {}

    def reporter(role: str) -> Any:
        async def report(o: dict[str, Any]) -> None:
            reports[role].append(o)

        return report

    def sender(to: str) -> Any:
        async def send(kind: str, payload: str) -> None:
            await links[to].handle(kind, payload)

        return send

    links["answerer"] = PeerLink(
        "o", "answerer", [], sender("offerer"), report=reporter("answerer")
    )
    links["offerer"] = PeerLink("a", "offerer", [], sender("answerer"), report=reporter("offerer"))
    try:
        await links["offerer"].start_offer()
        await asyncio.wait_for(links["offerer"].wait_connected(), 20)
        await asyncio.wait_for(links["answerer"].wait_connected(), 20)
        for _ in range(50):
            if reports["offerer"] and reports["answerer"]:
                break
            await asyncio.sleep(0.05)
    finally:
        for link in links.values():
            await link.close()
    connected = {"result": "connected", "local": "host", "remote": "host"}
    # The answerer may see the offerer's address as peer-reflexive (its checks come first).
    assert reports["offerer"] == [connected]
    assert len(reports["answerer"]) == 1
    assert reports["answerer"][0]["result"] == "connected"
    assert {reports["answerer"][0]["local"], reports["answerer"][0]["remote"]} <= {"host", "prflx"}


async def test_a_connection_that_times_out_is_reported_failed(loopback_only: None) -> None:
    """Nobody answers the offer: `timeout`, with what this side gathered and no remote."""
    got: list[dict[str, Any]] = []

    async def report(o: dict[str, Any]) -> None:
        got.append(o)

    async def lost(kind: str, payload: str) -> None:
        pass

    link = PeerLink("x", "offerer", [], lost, report=report, connect_timeout=0.5)
    try:
        await link.start_offer()
        await asyncio.wait_for(link.ended.wait(), 10)
        for _ in range(20):
            if got:
                break
            await asyncio.sleep(0.05)
    finally:
        await link.close()
    assert got == [{"result": "failed", "local": "host", "remote": "none", "reason": "timeout"}]
