"""Two nodes in one process: two apps, each on its own event loop (one Starlette
TestClient each), sharing one in-memory broker. The cross-node paths of
join, signal, leave and resume, without subprocesses or Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from pea.app import create_app
from pea.bus.memory import MemoryBroker, MemoryBus
from pea.config import Settings
from tests.support.inproc import ROOM, Peer, peers_of

Connect = Callable[..., Peer]


@pytest.fixture
def nodes() -> Iterator[tuple[Connect, Connect, MemoryBroker]]:
    broker = MemoryBroker()
    # One secret for both: a resume token from one node is good on the other.
    settings = Settings(ice_servers=[], secret="s" * 32)

    def app(name: str) -> Any:
        return create_app(settings, bus=MemoryBus(name, lease=6, grace=15, broker=broker))

    with (
        TestClient(app("node-a")) as a,
        TestClient(app("node-b")) as b,
        peers_of(a) as on_a,
        peers_of(b) as on_b,
    ):
        yield on_a, on_b, broker


def test_join_signal_and_leave_across_nodes(nodes: tuple[Connect, Connect, MemoryBroker]) -> None:
    on_a, on_b, _ = nodes
    ann, bob = on_a(), on_b()
    ann.join(name="Ann")
    welcome = bob.join(name="Bob")
    assert welcome["peers"] == [{"peer": ann.id, "name": "Ann"}]
    assert ann.expect("peer-joined") == {"type": "peer-joined", "peer": bob.id, "name": "Bob"}

    ann.send({"type": "signal", "to": bob.id, "data": {"sdp": "offer"}})
    assert bob.expect("signal") == {"type": "signal", "from": ann.id, "data": {"sdp": "offer"}}
    bob.send({"type": "signal", "to": ann.id, "data": [1, "answer"]})
    assert ann.expect("signal") == {"type": "signal", "from": bob.id, "data": [1, "answer"]}

    bob.send({"type": "leave"})
    assert ann.expect("peer-left") == {"type": "peer-left", "peer": bob.id}
    ann.send({"type": "signal", "to": bob.id, "data": 1})
    ann.expect_error("unknown-peer")


def test_a_peer_resumes_on_the_other_node_unnoticed(
    nodes: tuple[Connect, Connect, MemoryBroker],
) -> None:
    on_a, on_b, broker = nodes
    ann, bob = on_a(), on_a()
    ann.join()
    bob.join()
    ann.expect("peer-joined")
    token = bob.welcome["resume"]
    bob.ws.close(4000)  # lost, not left: its place is kept for the grace period

    again = on_b()
    welcome = again.join(resume=token)
    assert welcome["peer"] == bob.id
    assert welcome["peers"] == [{"peer": ann.id, "name": None}]
    ann.send({"type": "signal", "to": bob.id, "data": "still there?"})
    assert again.expect("signal")["data"] == "still there?"
    again.send({"type": "signal", "to": ann.id, "data": "yes"})
    assert ann.expect("signal")["data"] == "yes"
    ann.quiet()  # neither peer-left nor peer-joined for Bob
    deadline = time.monotonic() + 5
    while set(broker.subscribers.get(ROOM, {})) != {"node-a", "node-b"}:
        assert time.monotonic() < deadline, broker.subscribers
        time.sleep(0.01)


def test_a_resume_takes_the_peer_over_from_a_connection_on_the_other_node(
    nodes: tuple[Connect, Connect, MemoryBroker],
) -> None:
    on_a, on_b, _ = nodes
    ann, bob = on_a(), on_a()
    ann.join()
    bob.join()
    ann.expect("peer-joined")
    again = on_b()
    assert again.join(resume=bob.welcome["resume"])["peer"] == bob.id
    assert bob.expect_close() == 1000  # the stale connection on node A is closed
    ann.quiet()


def test_the_room_limit_holds_across_nodes(nodes: tuple[Connect, Connect, MemoryBroker]) -> None:
    on_a, on_b, _ = nodes
    joined = [(on_a if i % 2 else on_b)() for i in range(16)]
    for peer in joined:
        peer.join()
    late = on_b()
    late.send({"type": "join", "room": ROOM})
    late.expect_error("room-full")


class SlowBroker(MemoryBroker):
    """Delivers every event `delay` seconds late, in order, even to the publishing
    node: the round trip through Redis that a node's own `joined` makes too."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def publish(self, room: str, envelope: str) -> None:
        for node, deliver in list(self.subscribers.get(room, {}).items()):
            loop = self._loops[node]
            if not loop.is_closed():
                loop.call_soon_threadsafe(loop.call_later, self.delay, deliver, room, envelope)


def test_a_signal_never_overtakes_its_senders_peer_joined_on_the_same_node() -> None:
    """A newcomer's `hello` to a sharer on its own node went straight to it, while its
    `peer-joined` still travelled through the bus: the sharer then offered twice, and
    the two offers' answers crossed (the CLI's connection stall, about 1 connection in 100)."""
    settings = Settings(ice_servers=[], secret="s" * 32)
    broker = SlowBroker(0.3)
    app = create_app(settings, bus=MemoryBus("node-a", lease=6, grace=15, broker=broker))
    with TestClient(app) as client, peers_of(client) as connect:
        sharer, receiver = connect(), connect()
        sharer.join()
        receiver.join()
        receiver.send({"type": "signal", "to": sharer.id, "data": "hello"})
        assert sharer.expect("peer-joined")["peer"] == receiver.id
        assert sharer.expect("signal") == {"type": "signal", "from": receiver.id, "data": "hello"}
        # Once announced, the direct path again: the answer to the sharer's reply is
        # not held back behind the bus (a signal through it would wait 0.3 s).
        sharer.send({"type": "signal", "to": receiver.id, "data": "offer"})
        assert receiver.expect("signal")["data"] == "offer"
        started = time.monotonic()
        receiver.send({"type": "signal", "to": sharer.id, "data": "answer"})
        assert sharer.expect("signal")["data"] == "answer"
        assert time.monotonic() - started < 0.25
        # The sharer's own `joined` was still on its way when the receiver's welcome
        # listed it: no second `peer-joined` for it once it arrives.
        time.sleep(0.5)
        receiver.quiet()
        sharer.quiet()
