"""Random and malformed frames at a node: each is answered per protocol, nothing
crashes, and a conversation in another room carries on untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from pea.errors import CODES
from pea.protocol import (
    CANDIDATE_TYPES,
    OUTCOME_REASONS,
    Join,
    Leave,
    Outcome,
    Ping,
    ProtocolError,
    Signal,
    encode_data,
    parse,
)
from tests.support.inproc import OTHER_ROOM, ROOM, peers_of

ERROR_CODES = set(CODES)
ANSWERS = {"welcome", "error", "pong"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# What a hostile client can put in a frame that a well-behaved one never does:
# lone surrogates (json.dumps escapes them, as a client would have to), NaN and
# infinities, numbers out of range, deep nesting.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
hostile_text = st.text(alphabet=st.characters() | surrogates, max_size=20)
hostile_values = st.recursive(
    st.none() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
raw_numbers = st.sampled_from(
    ["1e400", "-1e400", "1" * 5000, "-" + "9" * 4301, "NaN", "Infinity", "-Infinity", "1e308"]
)
hostile_frames = st.one_of(
    st.tuples(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["join", "signal", "leave", "ping"])},
            optional={
                "room": hostile_text,
                "name": hostile_text,
                "resume": hostile_text,
                "to": hostile_text,
                "data": hostile_values,
            },
        ),
        st.dictionaries(hostile_text, hostile_values, max_size=2),  # extra fields
    ).map(lambda parts: json.dumps({**parts[1], **parts[0]})),
    st.tuples(raw_numbers, st.integers(0, 3)).map(
        lambda n: '{"type":"signal","to":"x","data":' + "[" * n[1] + n[0] + "]" * n[1] + "}"
    ),
    st.integers(900, 1100).map(
        lambda d: '{"type":"signal","to":"x","data":' + "[" * d + "]" * d + "}"
    ),
)
rooms = st.sampled_from([ROOM, "short", "x" * 70, "bad room with spaces", ""]) | st.text(
    max_size=70
)
frames = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=64),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["join", "signal", "leave", "ping", "nope", ""])},
        optional={
            "room": rooms | json_values,
            "name": st.text(max_size=80) | json_values,
            "resume": st.text(max_size=40) | json_values,
            "to": st.text(max_size=30) | json_values,
            "data": json_values,
        },
    ).map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.just("outcome")},
        optional={
            key: st.sampled_from([*CANDIDATE_TYPES, *OUTCOME_REASONS, "connected", "failed"])
            | json_values
            for key in ("result", "local", "remote", "reason")
        },
    ).map(json.dumps),
    hostile_frames,
)


def _parsed(frame: Any) -> Any:
    if isinstance(frame, bytes):
        return None
    try:
        return parse(frame)
    except ProtocolError:
        return None


def test_random_frames_are_answered_per_protocol(make_client: Callable[..., TestClient]) -> None:
    # The fuzzer may stay unjoined for longer than the join deadline while hypothesis
    # generates and shrinks (a fresh example database on CI takes tens of seconds).
    client = make_client(
        rate_per_second=100000, rate_burst=100000, max_frame_bytes=16384, join_timeout=3600
    )
    with peers_of(client) as connect:
        ann, bob = connect(), connect()
        ann.join(room=OTHER_ROOM)
        bob.join(room=OTHER_ROOM)
        ann.expect("peer-joined")
        fuzzer = connect()
        state = {"joined": False}

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(frames)
        def check(frame: Any) -> None:
            if isinstance(frame, bytes):
                fuzzer.ws.send_bytes(frame)
            else:
                fuzzer.ws.send_text(frame)
            fuzzer.send({"type": "ping"})
            answers = []
            while (reply := fuzzer.recv()) != {"type": "pong"}:
                answers.append(reply)
            message = _parsed(frame)
            if isinstance(message, Ping):
                answers.append(reply)  # the frame's own pong; the barrier's comes next
                fuzzer.expect("pong")
            # A successful leave and a valid outcome in a room are the frames without answer.
            silent = isinstance(message, Leave | Outcome) and state["joined"]
            assert len(answers) == (0 if silent else 1), (frame, answers)
            if silent and isinstance(message, Leave):
                state["joined"] = False
            if answers and answers[0]["type"] == "welcome":
                state["joined"] = True
            for reply in answers:
                assert reply["type"] in ANSWERS, reply
                if reply["type"] == "error":
                    assert reply["code"] in ERROR_CODES
                    assert isinstance(reply["message"], str) and reply["message"]

        check()
        bob.send({"type": "signal", "to": ann.id, "data": "unharmed"})
        assert ann.expect("signal")["data"] == "unharmed"
        ann.quiet()


def _strict_loads(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_frames | frames.filter(lambda f: isinstance(f, str)))
def test_whatever_parses_can_be_relayed(frame: str) -> None:
    """The invariant `parse` keeps: every string it lets through encodes as UTF-8
    (for Redis and the WebSocket), and `data` re-encodes as strict JSON equal to
    what was sent."""
    try:
        message = parse(frame)
    except ProtocolError as exc:
        assert exc.code in ("bad-json", "bad-message", "bad-room")
        return
    if isinstance(message, Signal):
        message.to.encode()
        try:
            relayed = encode_data(message.data)
        except ProtocolError as exc:
            assert exc.code == "bad-message"  # too deep to encode again
            return
        assert _strict_loads(relayed.encode().decode()) == message.data
    elif isinstance(message, Join):
        message.room.encode()
        for text in (message.name, message.resume):
            if text is not None:
                text.encode()
