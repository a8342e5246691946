"""What a client learns about ICE (TURN credentials, relay policy) and the outcomes it
reports: the operator's view of "did it connect?"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from pea.app import create_metrics_app
from pea.config import ConfigError, load_settings
from pea.ice import turn_credentials
from pea.session import MAX_OUTCOMES
from tests.support.inproc import Peer, peers_of

TURN_SECRET = "turn-secret-0123456789abcdef"
TURN = {
    "turn_urls": ("turn:turn.example:3478", "turn:turn.example:3478?transport=tcp"),
    "turn_secret": TURN_SECRET,
    "turn_ttl": 600,
}


def expected_credential(secret: str, username: str) -> str:
    """RFC-free restatement of the TURN REST convention coturn checks."""
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def test_turn_credentials_are_what_coturn_recomputes_and_expire() -> None:
    username, credential = turn_credentials(TURN_SECRET, 600, now=1_700_000_000)
    expiry, _, rand = username.partition(":")
    assert expiry == "1700000600"
    assert len(rand) == 12
    assert credential == expected_credential(TURN_SECRET, username)
    again, _ = turn_credentials(TURN_SECRET, 600, now=1_700_000_000)
    assert again != username, "each welcome has credentials of its own"


def welcome_config(make_client: Callable[..., TestClient], **settings: object) -> dict[str, Any]:
    with peers_of(make_client(**settings)) as connect:
        return dict(connect().join()["config"])


def test_turn_is_off_by_default(make_client: Callable[..., TestClient]) -> None:
    config = welcome_config(make_client)
    assert config["protocol"] == "1.1"
    assert config["relay"] == "off"
    assert config["ice_servers"] == []


def test_with_turn_on_each_welcome_carries_fresh_credentials_never_the_secret(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(
        ice_servers=[{"urls": ["stun:stun.example:3478"]}],
        **TURN,
    )
    with peers_of(client) as connect:
        first, second = connect().join(), connect().join()
    assert TURN_SECRET not in json.dumps(first) + json.dumps(second)
    assert first["config"]["relay"] == "on"
    stun, turn = first["config"]["ice_servers"]
    assert stun == {"urls": ["stun:stun.example:3478"]}
    assert turn["urls"] == ["turn:turn.example:3478", "turn:turn.example:3478?transport=tcp"]
    assert turn["credential"] == expected_credential(TURN_SECRET, turn["username"])
    expiry = int(turn["username"].split(":")[0])
    assert 590 <= expiry - time.time() <= 610
    assert second["config"]["ice_servers"][1]["username"] != turn["username"]


def test_forbidding_relay_hands_out_no_turn_at_all(make_client: Callable[..., TestClient]) -> None:
    config = welcome_config(
        make_client,
        ice_servers=[{"urls": ["stun:s.example", "turn:static.example"], "username": "u"}],
        forbid_relay=True,
        **TURN,
    )
    assert config["relay"] == "forbidden"
    assert config["ice_servers"] == [{"urls": ["stun:s.example"], "username": "u"}]


def test_a_static_turn_server_from_ice_servers_counts_as_relay_on(
    make_client: Callable[..., TestClient],
) -> None:
    config = welcome_config(make_client, ice_servers=[{"urls": "turns:t.example:5349"}])
    assert config["relay"] == "on"


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"turn_urls": "turn:t.example:3478"}, "--turn-secret"),
        ({"turn_secret": "x" * 20}, "--turn-urls"),
        ({"turn_urls": "stun:t.example", "turn_secret": "x" * 20}, "--turn-urls"),
        ({"turn_urls": "http://t.example", "turn_secret": "x" * 20}, "--turn-urls"),
        ({"turn_urls": "turn:t.example", "turn_secret": "short"}, "--turn-secret"),
        ({"turn_ttl": "5"}, "--turn-ttl"),
        ({"forbid_relay": "maybe"}, "--forbid-relay"),
    ],
)
def test_bad_turn_settings_name_the_setting(overrides: dict[str, str], culprit: str) -> None:
    with pytest.raises(ConfigError, match=culprit):
        load_settings(overrides, environ={})


def scrape(client: TestClient) -> str:
    scraper = TestClient(create_metrics_app(client.app.state.node))  # type: ignore[attr-defined]
    return scraper.get("/metrics").text


def outcome_lines(text: str) -> dict[str, float]:
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("pea_peer_connections_total{")
    }


def test_outcomes_are_counted_by_result_candidate_types_and_reason(
    client: TestClient, connect: Callable[..., Peer]
) -> None:
    peer = connect()
    peer.join()
    peer.send({"type": "outcome", "result": "connected", "local": "srflx", "remote": "prflx"})
    peer.send({"type": "outcome", "result": "connected", "local": "srflx", "remote": "prflx"})
    peer.send(
        {
            "type": "outcome",
            "result": "failed",
            "local": "srflx",
            "remote": "none",
            "reason": "ice-failed",
        }
    )
    peer.quiet()  # no answer to a valid outcome
    series = "pea_peer_connections_total{{local={!r},reason={!r},remote={!r},result={!r}}}"
    assert outcome_lines(scrape(client)) == {
        series.format("srflx", "none", "prflx", "connected").replace("'", '"'): 2.0,
        series.format("srflx", "ice-failed", "none", "failed").replace("'", '"'): 1.0,
    }


HOSTILE_OUTCOMES = [
    {"result": "connected", "local": "srflx"},
    {"result": "connected", "local": "203.0.113.5", "remote": "host"},
    {"result": "connected", "local": "host", "remote": "none"},
    {"result": "connected", "local": "host", "remote": "host", "reason": "timeout"},
    {"result": "won", "local": "host", "remote": "host"},
    {"result": "failed", "local": "host", "remote": "host"},
    {"result": "failed", "local": "host", "remote": "host", "reason": "x" * 10000},
    {"result": "failed", "local": ["host"], "remote": "host", "reason": "timeout"},
    {"result": "failed", "local": "HOST", "remote": "host", "reason": "timeout"},
]


@pytest.mark.parametrize("fields", HOSTILE_OUTCOMES)
def test_an_outcome_with_anything_but_the_enumerated_values_is_refused_and_not_counted(
    client: TestClient, connect: Callable[..., Peer], fields: dict[str, object]
) -> None:
    peer = connect()
    peer.join()
    peer.send({"type": "outcome", **fields})
    assert peer.expect_error("bad-message")["ref"] == "outcome"
    peer.quiet()  # the connection stays
    assert outcome_lines(scrape(client)) == {}


def test_outcomes_need_a_room_and_one_connection_counts_a_bounded_number(
    client: TestClient, connect: Callable[..., Peer]
) -> None:
    valid = {"type": "outcome", "result": "connected", "local": "host", "remote": "host"}
    peer = connect()
    peer.send(valid)
    peer.expect_error("not-joined")
    peer.join()
    for _ in range(MAX_OUTCOMES + 50):
        peer.send(valid)
    peer.quiet()
    assert list(outcome_lines(scrape(client)).values()) == [float(MAX_OUTCOMES)]
