"""Admission (pea.admission) in process: Host check, per-address limit, join deadline."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pea.admission import client_key
from pea.http import host_allowed
from tests.support.inproc import peers_of


def test_a_dns_rebinding_handshake_is_refused_with_a_public_url(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(public_url="https://pea.example")
    with peers_of(client) as connect:
        # evil.test resolved to this node: the browser sends the attacker's name.
        with pytest.raises(WebSocketDisconnect) as refused:
            connect(origin="http://evil.test:8080", host="evil.test:8080").join()
        assert refused.value.code == 1008  # closed before accept: HTTP 403
        with pytest.raises(WebSocketDisconnect):
            connect(host="evil.test").join()  # no Origin, still the wrong host
        connect(origin="https://pea.example", host="pea.example").join()
        connect(origin="http://127.0.0.1:8080", host="127.0.0.1:8080").join()
        connect(origin="http://testserver", host="testserver").join()  # the node's own address


def test_host_names_that_reach_the_node() -> None:
    own = ("10.1.2.3",)
    url = "https://pea.example"
    for host in ("pea.example", "PEA.example:443", "10.1.2.3:8080", "localhost:8080", "[::1]:80"):
        assert host_allowed(host, url, own), host
    for bad in (None, "", "evil.test", "pea.example.evil.test", "10.1.2.4", "[::2]:80", "a b"):
        assert not host_allowed(bad, url, own), bad


def test_one_address_may_hold_only_so_many_connections(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_connections_per_client=2)
    with peers_of(client) as connect:
        first = connect()
        first.join()
        connect().join()
        third = connect()
        error = third.expect_error("unavailable")
        assert "Too many connections from your network address" in error["message"]
        assert third.expect_close() == 1013
        first.ws.close()
        node = client.app.state.node  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while len(node.connections) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        connect().join()  # a place freed up


def test_a_socket_that_never_joins_is_closed(make_client: Callable[..., TestClient]) -> None:
    # That its place is freed is checked against a real process, in
    # tests/cluster/test_admission.py (the test client does not answer closes).
    client = make_client(join_timeout=0.3)
    with peers_of(client) as connect:
        idle = connect()
        error = idle.expect_error("not-joined")
        assert "0.3 s" in error["message"]
        assert idle.expect_close() == 1008
        joined = connect()
        joined.join()
        time.sleep(0.5)
        joined.quiet()  # past the deadline, a joined peer stays


@pytest.mark.timeout(30)  # the in-process socket has no receive timeout of its own
def test_a_peer_that_leaves_and_stays_unjoined_is_closed(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(join_timeout=0.3)
    with peers_of(client) as connect:
        peer = connect()
        peer.join()
        time.sleep(0.5)  # the first deadline passes while it is in the room
        peer.send({"type": "leave"})
        error = peer.expect_error("not-joined")
        assert "0.3 s" in error["message"]
        assert peer.expect_close() == 1008


def test_ipv6_clients_are_counted_by_their_64() -> None:
    # One subscriber's /64 holds 2^64 addresses: each must not bring a new allowance.
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("testclient") == "testclient"
