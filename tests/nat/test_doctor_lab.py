"""`pea doctor` from a home of the NAT lab, through its router, against the lab's node
with TURN on and the lab's coturn: what an operator would see from such a network."""

from __future__ import annotations

import subprocess

from tests.nat.conftest import World
from tests.nat.lab import EIM, SYMMETRIC
from tests.support.procs import pea_exe


def doctor_from(world: World, home: str, url: str) -> tuple[int, str]:
    done = subprocess.run(
        ["ip", "netns", "exec", world.lab.ns(home), pea_exe(), "doctor", url, "--timeout", "4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_doctor_behind_an_endpoint_independent_nat_sees_one_mapping_and_a_working_relay(
    world: World,
) -> None:
    world.lab.share_nat(False)
    world.lab.set_nat("a", EIM)
    code, text = doctor_from(world, "home-a", world.relay.url)
    assert code == 0, text
    assert "ok  WebSocket: ws://203.0.113.21:8080/ws upgraded" in text, text
    assert "warn  secure context: plain HTTP on 203.0.113.21" in text, text
    # coturn answers from its two addresses (RFC 5780): the router's one mapping shows.
    assert "it sees this host as 203.0.113.2:" in text, text
    assert "ok  NAT: endpoint-independent mapping" in text, text
    assert "info  relay: TURN is on on this node" in text, text
    assert "ok  TURN: turn:203.0.113.10:3478?transport=udp: the node's credentials allocate" in text


def test_doctor_behind_a_symmetric_nat_says_so(world: World) -> None:
    world.lab.share_nat(False)
    world.lab.set_nat("b", SYMMETRIC)
    code, text = doctor_from(world, "home-b", world.direct.url)
    assert code == 0, text  # the deployment is fine; this network is strict
    assert "warn  NAT: symmetric" in text, text
    assert "info  relay: TURN is off on this node" in text, text
