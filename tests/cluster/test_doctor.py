"""`pea doctor` against real `pea serve` processes on loopback, with stand-in STUN servers
(the NAT lab runs it against coturn through real NATs: tests/nat/test_doctor_lab.py)."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from pea import doctor, stun
from tests.support.procs import pea_node

pytestmark = pytest.mark.cluster


@contextlib.contextmanager
def stun_server(ip: str, port_shift: int = 0) -> Iterator[int]:
    """A STUN server on loopback answering each Binding with the sender's address, its
    port moved by `port_shift` (a symmetric NAT maps each destination to its own port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ip, 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, (host, port) = sock.recvfrom(2048)
            except TimeoutError:
                continue
            tid = data[8:20]
            xport = (port + port_shift) ^ (stun.MAGIC >> 16)
            xip = struct.unpack("!I", socket.inet_aton(host))[0] ^ stun.MAGIC
            value = struct.pack("!BBHI", 0, 1, xport, xip)
            reply = stun.encode(
                stun.BINDING | stun.SUCCESS, tid, [(stun.XOR_MAPPED_ADDRESS, value)]
            )
            sock.sendto(reply, (host, port))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def run_doctor(url: str, origin: str | None = None) -> tuple[int, str]:
    lines: list[str] = []
    code = doctor.run(url, 3.0, origin, lines.append)
    return code, "\n".join(lines)


def ice(*ports: tuple[str, int]) -> str:
    return json.dumps([{"urls": [f"stun:{ip}:{port}" for ip, port in ports]}])


def test_a_healthy_node_behind_no_nat_passes() -> None:
    with (
        stun_server("127.0.0.1") as p1,
        stun_server("127.0.0.2") as p2,
        pea_node(ice_servers=ice(("127.0.0.1", p1), ("127.0.0.2", p2))) as node,
    ):
        code, text = run_doctor(node.url)
    assert code == 0, text
    for expected in (
        f"ok  page: {node.url}/ answers 200",
        "ok  secure context: 127.0.0.1 is local",
        "ok  WebSocket: ws://",
        "(protocol 1.1)",
        f"ok  origin: {node.url} is allowed",
        "ok  foreign origin: https://pea-doctor.invalid is refused (403)",
        f"ok  STUN: stun:127.0.0.1:{p1} answers",
        "info  relay: TURN is off on this node",
    ):
        assert expected in text, text
    # Loopback STUN sees our own address: nothing translates it.
    assert "ok  NAT: none: STUN sees this host's own 127.0.0.1:" in text, text


def test_a_mapping_that_changes_with_the_destination_is_called_symmetric() -> None:
    with (
        stun_server("127.0.0.1", port_shift=1) as p1,
        stun_server("127.0.0.2", port_shift=2) as p2,
        pea_node(ice_servers=ice(("127.0.0.1", p1), ("127.0.0.2", p2))) as node,
    ):
        code, text = run_doctor(node.url)
    assert code == 0, text  # a warning: the deployment works, this network is strict
    assert "warn  NAT: symmetric" in text, text
    assert "only a TURN relay reaches them" in text


def test_a_translated_but_stable_mapping_is_endpoint_independent() -> None:
    with (
        stun_server("127.0.0.1", port_shift=7) as p1,
        stun_server("127.0.0.2", port_shift=7) as p2,
        pea_node(ice_servers=ice(("127.0.0.1", p1), ("127.0.0.2", p2))) as node,
    ):
        _, text = run_doctor(node.url)
    assert "ok  NAT: endpoint-independent mapping" in text, text


def test_an_origin_the_node_refuses_and_a_stun_server_that_never_answers_fail() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    with silent, pea_node(ice_servers=ice(("127.0.0.1", silent.getsockname()[1]))) as node:
        code, text = run_doctor(node.url, origin="https://elsewhere.example")
        assert code == 1
        assert "FAIL  origin: https://elsewhere.example is not allowed" in text, text
        assert "--public-url" in text
        code, text = run_doctor(node.url)
    assert code == 1, text
    assert "FAIL  STUN:" in text and "no answer" in text, text


def test_a_node_open_to_every_origin_is_a_warning() -> None:
    with pea_node(ice_servers="[]", allowed_origins="*") as node:
        code, text = run_doctor(node.url)
    assert code == 0, text
    assert "warn  foreign origin: https://pea-doctor.invalid may open the WebSocket" in text
    assert "warn  STUN: the node offers no STUN server" in text


class _NoUpgrade(http.server.BaseHTTPRequestHandler):
    """A proxy that drops the Upgrade header: /ws is answered as a plain request."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"<!doctype html><html></html>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_proxy_that_does_not_pass_the_upgrade_is_named() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoUpgrade)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code, text = run_doctor(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1, text
    assert "answered HTTP 200 instead of upgrading" in text, text
    assert "Upgrade and Connection headers" in text


def test_an_unreachable_url_fails_without_hanging() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, text = run_doctor(f"http://127.0.0.1:{port}")
    assert code == 1
    assert "FAIL  page: cannot reach" in text and "FAIL  WebSocket" in text


def test_ice_urls_are_read_as_browsers_read_them() -> None:
    assert doctor.parse_ice_url("stun:stun.example") == ("stun", "stun.example", 3478, "udp")
    assert doctor.parse_ice_url("turn:203.0.113.10:3478?transport=udp") == (
        "turn",
        "203.0.113.10",
        3478,
        "udp",
    )
    assert doctor.parse_ice_url("turns:t.example") == ("turns", "t.example", 5349, "tcp")
    assert doctor.parse_ice_url("turn:[2001:db8::1]:3479") == ("turn", "2001:db8::1", 3479, "udp")
    assert doctor.parse_ice_url("http://x") is None
    assert doctor.parse_ice_url("stun:host:notaport") is None
