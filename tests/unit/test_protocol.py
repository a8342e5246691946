import json

import pytest

from pea.protocol import (
    Join,
    Leave,
    Outcome,
    Ping,
    ProtocolError,
    Signal,
    encode_data,
    parse,
    signal_frame,
)
from pea.resume import ResumeSigner

ROOM = "abcdefghijklmnopqrstuv"


def code_of(text: str) -> str:
    with pytest.raises(ProtocolError) as info:
        parse(text)
    return info.value.code


def test_messages_parse_to_their_types() -> None:
    assert parse(json.dumps({"type": "join", "room": ROOM, "name": "  Ann  "})) == Join(
        ROOM, "Ann", None
    )
    assert parse('{"type":"signal","to":"p","data":{"sdp":"x"}}') == Signal("p", {"sdp": "x"})
    assert parse('{"type":"signal","to":"p","data":null}') == Signal("p", None)
    assert parse('{"type":"leave"}') == Leave()
    assert parse('{"type":"ping","extra":[1,2]}') == Ping()
    assert parse(
        '{"type":"outcome","result":"connected","local":"relay","remote":"srflx","reason":null}'
    ) == Outcome("connected", "relay", "srflx", "none")
    assert parse(
        '{"type":"outcome","result":"failed","local":"none","remote":"host","reason":"timeout"}'
    ) == Outcome("failed", "none", "host", "timeout")


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", "bad-json"),
        ("[1,2]", "bad-json"),
        ('"join"', "bad-json"),
        ("{}", "bad-message"),
        ('{"type":5}', "bad-message"),
        ('{"type":"dance"}', "bad-message"),
        ('{"type":"join"}', "bad-message"),
        ('{"type":"join","room":5}', "bad-message"),
        ('{"type":"join","room":"short"}', "bad-room"),
        ('{"type":"join","room":"' + "a" * 65 + '"}', "bad-room"),
        ('{"type":"join","room":"abcdefghijklmnop/rst"}', "bad-room"),
        ('{"type":"join","room":"' + ROOM + '","name":""}', "bad-message"),
        ('{"type":"join","room":"' + ROOM + '","name":"   "}', "bad-message"),
        ('{"type":"join","room":"' + ROOM + '","name":"' + "n" * 65 + '"}', "bad-message"),
        ('{"type":"join","room":"' + ROOM + '","name":7}', "bad-message"),
        ('{"type":"join","room":"' + ROOM + '","resume":7}', "bad-message"),
        ('{"type":"signal","data":1}', "bad-message"),
        ('{"type":"signal","to":"p"}', "bad-message"),
        ('{"type":"signal","to":1,"data":1}', "bad-message"),
        ("[" * 100000, "bad-json"),
        ('{"type":"outcome"}', "bad-message"),
        ('{"type":"outcome","result":"failed","local":"host","remote":"host"}', "bad-message"),
    ],
)
def test_malformed_frames_get_the_protocol_error_code(text: str, code: str) -> None:
    assert code_of(text) == code


def signal_with(data: str, extra: str = "") -> str:
    return '{"type":"signal","to":"p","data":' + data + extra + "}"


@pytest.mark.parametrize(
    "text",
    [
        signal_with(r'"\ud800"'),
        signal_with(r'"tail \uDFFF"'),
        signal_with(r'"\ude00\ud83d"'),  # a pair in the wrong order is two lone halves
        signal_with(r'{"sdp":[{"ok":"\udbff"}]}'),
        signal_with(r'{"\udc00":1}'),
        signal_with("1", r',"\ud800":1'),
        r'{"type":"signal","to":"\ud800","data":1}',
        '{"type":"join","room":"' + ROOM + r'","name":"Ann\ud800"}',
        r'{"type":"join","room":"\ud800\ud800\ud800\ud800\ud800\ud800\ud800\ud800"}',
        '{"type":"join","room":"' + ROOM + r'","resume":"\udfff.abc"}',
        '{"type":"ping","x":"\ud800"}',  # a literal one, which only a str can hold
        signal_with("NaN"),
        signal_with('{"a":Infinity}'),
        signal_with("[-Infinity]"),
        signal_with("1e400"),
        signal_with("-1e400"),
        signal_with("1" * 5000),
        signal_with("-" + "1" * 4301),
    ],
)
def test_frames_that_cannot_be_relayed_are_bad_messages(text: str) -> None:
    assert code_of(text) == "bad-message"


@pytest.mark.parametrize(
    ("text", "data"),
    [
        (signal_with(r'"\ud83d\ude00"'), "\U0001f600"),
        (signal_with(r'"\\ud800"'), "\\ud800"),
        (signal_with(r'"\u00e9\u2603"'), "\u00e9\u2603"),
        (signal_with("[1e308,-1e308,1e-400]"), [1e308, -1e308, 0.0]),
        (signal_with("9" * 4300), int("9" * 4300)),
        (signal_with('"NaN Infinity"'), "NaN Infinity"),
    ],
)
def test_valid_lookalikes_still_parse(text: str, data: object) -> None:
    message = parse(text)
    assert message == Signal("p", data)
    assert json.loads(encode_data(message.data).encode()) == data


def test_deep_nesting_is_an_error_never_an_exception() -> None:
    for depth in (100, 900, 990, 998, 999, 1000, 5000, 100_000):
        text = signal_with("[" * depth + "]" * depth)
        try:
            message = parse(text)
        except ProtocolError as exc:
            assert exc.code == "bad-json"
            continue
        assert isinstance(message, Signal)
        try:
            encode_data(message.data)
        except ProtocolError as exc:
            assert exc.code == "bad-message"


def test_encode_data_refuses_what_would_not_be_json() -> None:
    for data in (float("nan"), [float("inf")], {"a": object()}):
        with pytest.raises(ProtocolError) as info:
            encode_data(data)
        assert info.value.code == "bad-message"


def test_room_limits_are_inclusive() -> None:
    assert isinstance(parse(json.dumps({"type": "join", "room": "a" * 16})), Join)
    assert isinstance(parse(json.dumps({"type": "join", "room": "a" * 64})), Join)
    assert code_of(json.dumps({"type": "join", "room": "a" * 15})) == "bad-room"


def test_signal_frame_carries_data_unchanged() -> None:
    data = {"sdp": "v=0\r\n", "n": [1, 2.5, None, True], "ü": "ß😀"}
    frame = json.loads(signal_frame("peer1", json.dumps(data)))
    assert frame == {"type": "signal", "from": "peer1", "data": data}


def test_resume_tokens_are_bound_to_room_peer_and_secret() -> None:
    signer = ResumeSigner(b"one secret")
    token = signer.issue(ROOM, "peer-123")
    assert signer.verify(token, ROOM) == "peer-123"
    assert signer.verify(token, "another-room-xxxxxxx") is None
    assert ResumeSigner(b"other secret").verify(token, ROOM) is None
    payload, mac = token.split(".")
    assert signer.verify(payload + "." + mac[:-2] + "AA", ROOM) is None
    assert signer.verify("garbage", ROOM) is None
    assert signer.verify("a.b.c", ROOM) is None
    assert signer.verify("", ROOM) is None
