"""The command-line peer's link parsing and signal authentication (signal/pea/peer)
against docs/transfer-protocol.md's test vectors and rules: the CLI must accept what
the browser accepts and refuse what it refuses."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("aiortc")

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pea.peer.auth import SignalAuth
from pea.peer.exits import Exit, PeerError
from pea.peer.link import from_b64url, parse_link
from tests.unit.test_transfer_vectors import vectors


def test_link_gives_the_documented_room_and_key() -> None:
    v = vectors()
    share = parse_link("https://pea.example/#" + v["fragment"])
    assert share.origin == "https://pea.example"
    assert share.ws_url == "wss://pea.example/ws"
    room, k = share.room_and_key
    assert room == v["room"]
    assert k.hex() == v["K_hex"]
    assert parse_link("http://127.0.0.1:8080/#" + v["fragment"]).ws_url == "ws://127.0.0.1:8080/ws"
    assert parse_link("#" + v["fragment"], server="http://h:1").origin == "http://h:1"


@pytest.mark.parametrize(
    "link",
    [
        "https://h/#AAECAwQFBgcICQoLDA0ODw",  # version 1: a bare secret
        "https://h/#2.AAECAwQFBgcICQoLDA0ODw.If4x36FUomFia_hUBG_SJw",  # version 2
        "https://h/#3.AAECAwQFBgcICQoLDA0ODx.If4x36FUomFia_hUBG_SJw",  # not canonical
        "https://h/#3.AAECAwQFBgcICQoLDA0ODw.If4x36FUomFia_hUBG_SJw\n",
        "https://h/#3.AAECAwQFBgcICQoLDA0ODw",
        "https://h/",
        "ftp://h/#3.AAECAwQFBgcICQoLDA0ODw.If4x36FUomFia_hUBG_SJw",
    ],
)
def test_links_the_browser_refuses_are_refused(link: str) -> None:
    with pytest.raises(PeerError) as e:
        parse_link(link.replace("\n", "%0A") if link.endswith("\n") else link)
    assert e.value.exit == Exit.USAGE


def test_envelopes_verify_as_documented() -> None:
    v = vectors()
    secret = from_b64url(v["secret"])
    assert secret is not None
    receiver = SignalAuth(secret, commit=v["commit"])
    offer = json.loads(v["sharer_envelope"])
    got = receiver.open(offer, v["sharer_peer"], v["receiver_peer"])
    assert got.ok and got.kind == "offer" and got.payload == "v=0"
    # The same envelope again is a replay; altered, it fails the MAC.
    assert receiver.open(offer, v["sharer_peer"], v["receiver_peer"]).why == "replay"
    altered = {**offer, "payload": "v=1", "seq": 8}
    assert receiver.open(altered, v["sharer_peer"], v["receiver_peer"]).why == "bad-mac"
    # The sharer's view of the receiver's hello: MAC alone.
    sharer = SignalAuth(
        secret, key=Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["ed25519_seed_hex"]))
    )
    hello = json.loads(v["receiver_envelope"])
    assert sharer.open(hello, v["receiver_peer"], v["sharer_peer"]).ok


def test_sealed_envelopes_reproduce_the_vectors() -> None:
    v = vectors()
    secret = from_b64url(v["secret"])
    assert secret is not None
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["ed25519_seed_hex"]))
    sharer = SignalAuth(secret, key=key)
    want = json.loads(v["sharer_envelope"])
    sharer.sid, sharer.seq = want["sid"], want["seq"] - 1
    assert sharer.seal("offer", v["sharer_peer"], v["receiver_peer"], "v=0") == want


def test_impostors_and_malformed_envelopes_are_refused() -> None:
    v = vectors()
    secret = from_b64url(v["secret"])
    assert secret is not None
    receiver = SignalAuth(secret, commit=v["commit"])
    other = SignalAuth(secret, key=Ed25519PrivateKey.generate())  # a link holder's own key
    env = other.seal("offer", v["sharer_peer"], v["receiver_peer"], "v=0")
    assert receiver.open(env, v["sharer_peer"], v["receiver_peer"]).why == "impostor"
    unsigned = SignalAuth(secret).seal("candidate", v["sharer_peer"], v["receiver_peer"], "{}")
    assert receiver.open(unsigned, v["sharer_peer"], v["receiver_peer"]).why == "impostor"
    bad: object
    for bad in ({**env, "v": 2}, {**env, "seq": 0}, {**env, "seq": True}, {**env, "sid": "x"}, []):
        assert receiver.open(bad, v["sharer_peer"], v["receiver_peer"]).why == "malformed"
    assert receiver.open(env, "bad\nid", v["receiver_peer"]).why == "malformed"
    # A sharer refuses offers: another page acting as a sharer.
    sharer = SignalAuth(secret, key=Ed25519PrivateKey.generate())
    second = other.seal("offer", v["receiver_peer"], v["sharer_peer"], "v=0")
    assert sharer.open(second, v["receiver_peer"], v["sharer_peer"]).why == "impostor"
