"""The protocol as a client sees it, against a node on the memory bus."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.support.inproc import OTHER_ROOM, ROOM, Peer, peers_of

Connect = Callable[..., Peer]


def test_welcome_gives_a_random_peer_id_config_and_a_resume_token(connect: Connect) -> None:
    welcome = connect().join(name="Ann's laptop")
    assert welcome["room"] == ROOM
    assert re.fullmatch(r"[A-Za-z0-9_-]{11,}", welcome["peer"])  # >= 64 bits of base64url
    assert welcome["peers"] == []
    assert isinstance(welcome["resume"], str) and welcome["resume"]
    assert welcome["config"]["ice_servers"] == []
    ids = {connect().join()["peer"] for _ in range(5)}
    assert len(ids) == 5


def test_peers_see_each_other_join_signal_and_leave(connect: Connect) -> None:
    ann, bob = connect(), connect()
    ann.join(name="Ann")
    assert bob.join(name="Bob")["peers"] == [{"peer": ann.id, "name": "Ann"}]
    assert ann.recv() == {"type": "peer-joined", "peer": bob.id, "name": "Bob"}
    data = {"sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", "list": [1, None, 2.5], "ü": "😀"}
    bob.send({"type": "signal", "to": ann.id, "data": data, "extra": "ignored"})
    assert ann.recv() == {"type": "signal", "from": bob.id, "data": data}
    bob.quiet()  # the sender never gets its own signal
    bob.send({"type": "leave"})
    assert ann.recv() == {"type": "peer-left", "peer": bob.id}
    bob.quiet()
    assert bob.join()["peers"] == [{"peer": ann.id, "name": "Ann"}]


def test_signals_arrive_in_order(connect: Connect) -> None:
    ann, bob = connect(), connect()
    ann.join()
    bob.join()
    ann.expect("peer-joined")
    for i in range(150):
        bob.send({"type": "signal", "to": ann.id, "data": i})
    assert [ann.expect("signal")["data"] for _ in range(150)] == list(range(150))


def test_rooms_are_separate(connect: Connect) -> None:
    ann, bob, eve = connect(), connect(), connect()
    ann.join()
    bob.join()
    eve.join(room=OTHER_ROOM)
    ann.expect("peer-joined")
    eve.send({"type": "signal", "to": ann.id, "data": "psst"})
    eve.expect_error("unknown-peer")
    ann.quiet()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "signal", "to": "x", "data": 1}, "not-joined"),
        ({"type": "leave"}, "not-joined"),
        ({"type": "join", "room": "tooshort"}, "bad-room"),
        ({"type": "join", "room": "has spaces in it!!"}, "bad-room"),
        ({"type": "join"}, "bad-message"),
        ({"type": "join", "room": ROOM, "name": ""}, "bad-message"),
        ({"type": "join", "room": ROOM, "name": "x" * 65}, "bad-message"),
        ({"type": "hello"}, "bad-message"),
        ({"no": "type"}, "bad-message"),
        ("{not json", "bad-json"),
        ("[]", "bad-json"),
    ],
)
def test_bad_frames_get_errors_and_the_connection_stays(
    connect: Connect, frame: Any, code: str
) -> None:
    peer = connect()
    peer.send(frame)
    peer.expect_error(code)
    peer.quiet()
    peer.join()  # still usable


def test_binary_frames_are_bad_json(connect: Connect) -> None:
    peer = connect()
    peer.ws.send_bytes(b"\x00\x01")
    peer.expect_error("bad-json")
    peer.quiet()


def test_join_twice_and_signal_to_self_or_strangers(connect: Connect) -> None:
    ann = connect()
    ann.join()
    ann.send({"type": "join", "room": ROOM})
    assert ann.expect_error("already-joined")["ref"] == "join"
    ann.send({"type": "signal", "to": ann.id, "data": 1})
    ann.expect_error("unknown-peer")
    ann.send({"type": "signal", "to": "nobody-here-at-all", "data": 1})
    ann.expect_error("unknown-peer")


def test_room_full(make_client: Callable[..., TestClient]) -> None:
    with peers_of(make_client(max_peers_per_room=2)) as connect:
        connect().join()
        connect().join()
        third = connect()
        third.send({"type": "join", "room": ROOM})
        third.expect_error("room-full")
        third.join(room=OTHER_ROOM)  # the connection is still good for another room


def test_closing_the_tab_is_a_departure(connect: Connect) -> None:
    ann, bob = connect(), connect()
    ann.join()
    bob.join()
    ann.expect("peer-joined")
    bob.ws.close(1001)
    assert ann.recv() == {"type": "peer-left", "peer": bob.id}


def test_a_lost_connection_can_resume_unnoticed_within_grace(
    make_client: Callable[..., TestClient],
) -> None:
    with peers_of(make_client(resume_grace=5, heartbeat_interval=0.1)) as connect:
        ann, bob = connect(), connect()
        ann.join()
        bob.join(name="Bob")
        ann.expect("peer-joined")
        bob.ws.close(4000)  # not a departure: no close frame of 1000/1001
        back = connect()
        welcome = back.join(name="Bob", resume=bob.welcome["resume"])
        assert welcome["peer"] == bob.id
        assert welcome["peers"] == [{"peer": ann.id, "name": None}]
        ann.quiet()  # neither peer-left nor peer-joined
        back.send({"type": "signal", "to": ann.id, "data": "still here"})
        assert ann.expect("signal")["from"] == bob.id


def test_a_lost_connection_is_reported_left_after_grace(
    make_client: Callable[..., TestClient],
) -> None:
    with peers_of(make_client(resume_grace=0.3, heartbeat_interval=0.1)) as connect:
        ann, bob = connect(), connect()
        ann.join()
        bob.join()
        ann.expect("peer-joined")
        bob.ws.close(4000)
        ann.quiet()
        assert ann.recv() == {"type": "peer-left", "peer": bob.id}


def test_foreign_or_forged_resume_tokens_join_as_new_peers(connect: Connect) -> None:
    ann, bob = connect(), connect()
    ann.join()
    token = ann.welcome["resume"]
    other = bob.join(room=OTHER_ROOM, resume=token)
    assert other["peer"] != ann.id
    forged = connect().join(resume=token[:-3] + "abc")
    assert forged["peer"] != ann.id


def test_oversized_frames_are_refused_then_closed(make_client: Callable[..., TestClient]) -> None:
    with peers_of(make_client(max_frame_bytes=2048)) as connect:
        big = '{"type":"ping","pad":"' + "x" * 3000 + '"}'
        peer = connect()
        peer.send(big)
        peer.expect_error("too-large")
        peer.quiet()
        peer.send(big)
        peer.expect_error("too-large")
        assert peer.expect_close() == 1009


def test_a_flood_is_rate_limited_then_closed_and_harms_nobody(
    make_client: Callable[..., TestClient],
) -> None:
    with peers_of(make_client(rate_per_second=5, rate_burst=10)) as connect:
        ann, bob, flooder = connect(), connect(), connect()
        ann.join()
        bob.join()
        ann.expect("peer-joined")
        for _ in range(10):
            flooder.send({"type": "ping"})
        for _ in range(10):
            flooder.expect("pong")
        flooder.send({"type": "ping"})
        flooder.expect_error("rate-limited")
        for _ in range(100):
            flooder.send({"type": "ping"})
        assert flooder.expect_close() == 1008
        bob.send({"type": "signal", "to": ann.id, "data": "fine"})
        assert ann.expect("signal")["data"] == "fine"


def test_foreign_origins_are_refused(make_client: Callable[..., TestClient]) -> None:
    client = make_client(allowed_origins=("https://friend.example",))
    with peers_of(client) as connect:
        with pytest.raises(WebSocketDisconnect):
            connect(origin="https://evil.example").join()
        connect(origin="https://friend.example").join()
        connect(origin="http://testserver").join()  # the page's own origin
        connect().join()  # no Origin: not a browser


def test_connection_limit_per_node(make_client: Callable[..., TestClient]) -> None:
    with peers_of(make_client(max_connections=2)) as connect:
        connect().join()
        connect().join()
        third = connect()
        third.expect_error("unavailable")
        assert third.expect_close() == 1013


def test_drain_moves_peers_away_and_readiness_goes_false(client: TestClient) -> None:
    with peers_of(client) as connect:
        ann = connect()
        ann.join()
        node = client.app.state.node  # type: ignore[attr-defined]
        client.portal.call(node.drain)  # type: ignore[union-attr]
        frame = ann.recv()
        assert frame["type"] == "reconnect" and 0 <= frame["after_ms"] <= 1000
        assert ann.expect_close() == 1012
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["draining"] is True
        late = connect()
        late.expect("reconnect")
        assert late.expect_close() == 1012


def test_ping_pong(connect: Connect) -> None:
    peer = connect()
    start = time.monotonic()
    peer.quiet()
    assert time.monotonic() - start < 5
