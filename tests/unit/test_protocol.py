import json

import pytest

from pea.protocol import Join, Leave, Ping, ProtocolError, Signal, parse, signal_frame
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
    ],
)
def test_malformed_frames_get_the_protocol_error_code(text: str, code: str) -> None:
    assert code_of(text) == code


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
