"""Hostile frames from a peer on node A to a peer on node B, on a real Redis.

Each frame gets its own answer (an `error` with the protocol's code, the sender
still connected), and after every one, another room spanning the same two nodes
still carries signals both ways and leaves both ways: no frame may break a node's
publisher, subscriber or heartbeat for everybody else.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.client import Client, new_room
from tests.support.procs import PeaNode, RedisServer, pea_node

pytestmark = pytest.mark.cluster

# Large enough for 100 000 levels of nesting to reach the parser (each level
# costs two bytes), so the parser, not the size limit, is what is tested.
MAX_FRAME = 300_000
DEEP = 100_000


@dataclass(frozen=True)
class Case:
    label: str
    frame: Callable[[str], str | bytes]
    """The raw frame, given the id of the target peer on node B."""
    code: str | None
    """The expected error code; None: the frame is valid and must be delivered."""
    join: bool = False
    """Sent by a fresh connection that has not joined (a `join` frame)."""
    delivered: object = None
    """For a valid frame: the `data` the target must receive."""


def signal(to: str, data: str, extra: str = "") -> str:
    # Raw text: json.dumps cannot write NaN-free hostile input or a lone
    # surrogate unescaped, so the frames are written by hand.
    return f'{{"type":"signal","to":{json.dumps(to)},"data":{data}{extra}}}'


def join(room: str, extra: str = "") -> str:
    return f'{{"type":"join","room":{json.dumps(room)}{extra}}}'


HUGE = "x" * (MAX_FRAME - 200)
ROOM_H = new_room()

CASES = [
    Case("lone surrogate in data", lambda to: signal(to, r'"\ud800"'), "bad-message"),
    Case("lone low surrogate in data", lambda to: signal(to, r'"a\udfffb"'), "bad-message"),
    Case(
        "lone surrogate in a nested key",
        lambda to: signal(to, r'{"sdp":[{"ok":1,"\udbff":2}]}'),
        "bad-message",
    ),
    Case(
        "lone surrogate in an ignored top-level key",
        lambda to: signal(to, "1", r',"\ud800":1'),
        "bad-message",
    ),
    Case("lone surrogate in to", lambda to: signal("\ud800", "1"), "bad-message"),
    Case(
        "lone surrogate in name",
        lambda to: join(ROOM_H, r',"name":"Ann\ud800"'),
        "bad-message",
        join=True,
    ),
    Case("lone surrogate in room", lambda to: join("\udc00" * 22), "bad-message", join=True),
    Case(
        "lone surrogate in resume",
        lambda to: join(ROOM_H, r',"resume":"\ud800.x"'),
        "bad-message",
        join=True,
    ),
    Case("NaN", lambda to: signal(to, "NaN"), "bad-message"),
    Case("Infinity", lambda to: signal(to, '{"a":Infinity}'), "bad-message"),
    Case("-Infinity", lambda to: signal(to, "[-Infinity]"), "bad-message"),
    Case("1e400", lambda to: signal(to, "1e400"), "bad-message"),
    Case("-1e400", lambda to: signal(to, "[-1e400]"), "bad-message"),
    Case("a 5000-digit int", lambda to: signal(to, "1" * 5000), "bad-message"),
    Case(
        "100000 levels of nesting",
        lambda to: signal(to, "[" * DEEP + "]" * DEEP),
        "bad-json",
    ),
    Case("100000 unclosed brackets", lambda to: "[" * DEEP, "bad-json"),
    Case(
        "a string just over the frame limit",
        lambda to: signal(to, json.dumps("x" * MAX_FRAME)),
        "too-large",
    ),
    Case("a binary frame", lambda to: b'{"type":"ping"}', "bad-json"),
    Case("a JSON array", lambda to: "[1,2]", "bad-json"),
    Case("a JSON string", lambda to: '"signal"', "bad-json"),
    Case("JSON null", lambda to: "null", "bad-json"),
    Case("not JSON", lambda to: "{'type': 'ping'}", "bad-json"),
    # Valid frames that look hostile are relayed unchanged.
    Case(
        "a string just under the frame limit",
        lambda to: signal(to, json.dumps(HUGE)),
        None,
        delivered=HUGE,
    ),
    Case(
        "an escaped surrogate pair",
        lambda to: signal(to, r'"\ud83d\ude00"'),
        None,
        delivered="\U0001f600",
    ),
    Case(
        "an escaped backslash before ud800",
        lambda to: signal(to, r'"\\ud800"'),
        None,
        delivered="\\ud800",
    ),
    Case(
        "a huge number that is still finite",
        lambda to: signal(to, "[1e308, " + "9" * 4000 + "]"),
        None,
        delivered=[1e308, int("9" * 4000)],
    ),
]


# The fuzzer sends faster than a person: the rate limit is not under test here.
NODE_SETTINGS = {"max_frame_bytes": str(MAX_FRAME), "rate_per_second": "5000", "rate_burst": "5000"}


@pytest.fixture
def big_frames(redis: RedisServer) -> Iterator[tuple[PeaNode, PeaNode]]:
    with (
        pea_node(redis.url, **NODE_SETTINGS) as a,
        pea_node(redis.url, **NODE_SETTINGS) as b,
    ):
        yield a, b


async def check_other_room(a: PeaNode, b: PeaNode, ann: Client, bob: Client, after: str) -> None:
    """Ann (node A) and Bob (node B) share a room: signals and leaves cross both ways."""
    try:
        await ann.send({"type": "signal", "to": bob.id, "data": "a to b"})
        assert (await bob.expect("signal", timeout=5))["data"] == "a to b"
        await bob.send({"type": "signal", "to": ann.id, "data": "b to a"})
        assert (await ann.expect("signal", timeout=5))["data"] == "b to a"
        for node in (a, b):  # a leave published on each node, seen on both
            visitor = await Client.open(node.ws_url)
            await visitor.join(ann.welcome["room"])
            for peer in (ann, bob):
                assert (await peer.expect("peer-joined", timeout=5))["peer"] == visitor.id
            await visitor.send({"type": "leave"})
            for peer in (ann, bob):
                assert (await peer.expect("peer-left", timeout=5))["peer"] == visitor.id
            await visitor.close()
    except (AssertionError, TimeoutError) as exc:
        raise AssertionError(f"the other room stopped working after {after}: {exc!r}") from exc


async def two_rooms(a: PeaNode, b: PeaNode) -> tuple[Client, Client, Client, Client]:
    """Ann (A) and Bob (B) in a room of their own; Eve (A) and Tom (B) in ROOM_H."""
    ann, bob = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await ann.join(new_room())
    await bob.join(ann.welcome["room"])
    await ann.expect("peer-joined")
    await check_other_room(a, b, ann, bob, "nothing")
    eve, tom = await Client.open(a.ws_url), await Client.open(b.ws_url)
    await tom.join(ROOM_H)
    await eve.join(ROOM_H)
    await tom.expect("peer-joined")
    assert tom.id is not None
    return ann, bob, eve, tom


async def test_hostile_frames_across_nodes_harm_nobody_else(
    big_frames: tuple[PeaNode, PeaNode],
) -> None:
    a, b = big_frames
    ann, bob, eve, tom = await two_rooms(a, b)
    target = tom.id
    assert target is not None

    for case in CASES:
        sender = await Client.open(a.ws_url) if case.join else eve
        await sender.ws.send(case.frame(target))
        if case.code is None:
            got = await tom.expect("signal", timeout=10)
            assert got["from"] == eve.id and got["data"] == case.delivered, case.label
        else:
            frame = await sender.recv(timeout=10)
            assert frame["type"] == "error", (case.label, frame)
            assert frame["code"] == case.code, (case.label, frame)
            assert isinstance(frame["message"], str) and frame["message"]
        await sender.quiet()  # still connected, nothing else came
        if case.join:
            await sender.close()
        await tom.quiet()  # the target got nothing from a refused frame
        await check_other_room(a, b, ann, bob, case.label)


# Atoms of random `data`: each refused one makes the whole frame `bad-message`;
# a lone surrogate does too unless a later duplicate key drops it while parsing.
REFUSED = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000]
SURROGATE = [r'"\ud800"', r'"x\udfffy"', r'"\ude00\ud83d"']
FINE = [
    '"ok"',
    "null",
    "true",
    "-12",
    "1e308",
    r'"\ud83d\ude00"',
    r'"\\ud800"',
    '"' + "x" * 500 + '"',
]
KEYS = ['"a"', '"sdp"', r'"\ud800"', r'"k\udc00"']


def random_data(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 4 or roll < 0.5:
        return rng.choice(rng.choice([REFUSED, SURROGATE, FINE, FINE]))
    items = [random_data(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.75:
        return "[" + ",".join(items) + "]"
    return "{" + ",".join(f"{rng.choice(KEYS)}:{item}" for item in items) + "}"


async def test_random_hostile_data_across_nodes_is_refused_or_relayed_intact(
    big_frames: tuple[PeaNode, PeaNode],
) -> None:
    a, b = big_frames
    ann, bob, eve, tom = await two_rooms(a, b)
    assert tom.id is not None
    rng = random.Random(20261126)
    for i in range(300):
        data = random_data(rng)
        await eve.ws.send(signal(tom.id, data))
        await eve.send({"type": "ping"})
        answer = await eve.recv(timeout=10)
        if answer["type"] == "error":
            assert answer["code"] == "bad-message", (data, answer)
            await eve.expect("pong")
        else:
            assert answer == {"type": "pong"}, (data, answer)
            assert not any(atom in data for atom in REFUSED), data
            got = await tom.expect("signal", timeout=10)
            # arrived as strict UTF-8 JSON: it re-encodes without a lone surrogate
            json.dumps(got["data"], ensure_ascii=False, allow_nan=False).encode()
        if i % 50 == 49:
            await tom.quiet()
            await check_other_room(a, b, ann, bob, f"random frame {i}: {data[:200]}")
    await tom.quiet()
    await check_other_room(a, b, ann, bob, "300 random frames")
