"""Protocol v1.1 (docs/protocol.md): parsing client frames and building server frames.

Parsing is pure: a text frame goes in, a typed message or a `ProtocolError`
carrying the error code comes out. Nothing here does I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pea.errors import DEPARTURE_CODES, Close, Errors, ProtocolError

__all__ = [  # Close, DEPARTURE_CODES and ProtocolError live in pea.errors
    "CANDIDATE_TYPES",
    "DEPARTURE_CODES",
    "MAX_NAME",
    "OUTCOME_REASONS",
    "PONG_FRAME",
    "PROTOCOL_VERSION",
    "ROOM_RE",
    "Close",
    "Join",
    "Leave",
    "Message",
    "Outcome",
    "Ping",
    "ProtocolError",
    "Signal",
    "encode_data",
    "parse",
    "peer_joined_frame",
    "peer_left_frame",
    "reconnect_frame",
    "signal_frame",
    "welcome_frame",
]

PROTOCOL_VERSION = "1.1"
"""Sent in the welcome's `config`; a client sends `outcome` only to a node that says 1.1+."""

ROOM_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
MAX_NAME = 64
MAX_INT_DIGITS = 4300
"""Longer integers are refused: Python's own int() limit, enforced here whatever
PYTHONINTMAXSTRDIGITS says, since int() of a long digit string is quadratic."""

# A lone surrogate can only be in a frame as a `\uD800`-`\uDFFF` escape: the
# WebSocket layer decodes text frames strictly, so never literally (`parse` looks
# for literal ones too, it takes any str). Only frames holding such an escape pay
# for the exact check. The regex costs ~1 µs on a 2 KB frame, less than
# `"\u" in text`, which stumbles over every `\r\n` of an SDP.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    name: str | None
    resume: str | None


@dataclass(frozen=True, slots=True)
class Signal:
    to: str
    data: Any


@dataclass(frozen=True, slots=True)
class Leave:
    pass


@dataclass(frozen=True, slots=True)
class Ping:
    pass


CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay", "none")
"""ICE candidate types an `outcome` may name (`none`: no candidate of any type)."""
OUTCOME_RESULTS = ("connected", "failed")
OUTCOME_REASONS = ("ice-failed", "timeout")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one peer connection ended up: only enumerated values, never an address."""

    result: str
    local: str
    remote: str
    reason: str
    """`none` for a connection that connected."""


Message = Join | Signal | Leave | Ping | Outcome


def _refuse_constant(name: str) -> Any:
    raise Errors.NOT_A_NUMBER.error(name=name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Errors.NUMBER_TOO_LARGE.error()
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise Errors.NUMBER_TOO_LARGE.error()
    return int(text)


_DECODER = json.JSONDecoder(
    parse_float=_finite_float, parse_int=_bounded_int, parse_constant=_refuse_constant
)

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _may_hold_surrogate(text: str) -> bool:
    if _SURROGATE_ESCAPE.search(text) is not None:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_encodable(obj: Any) -> None:
    """Every string of `obj`, keys included, must be encodable as UTF-8: a lone
    surrogate cannot be, neither in a Redis message nor in a WebSocket frame."""
    try:
        _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        raise Errors.LONE_SURROGATE.error() from None
    except (ValueError, RecursionError):
        raise Errors.CANNOT_RELAY.error() from None


def parse(text: str) -> Message:
    """Parse one text frame; raise ProtocolError with the protocol's error code.

    Whatever parses can be encoded again: no lone surrogates, NaN or infinities."""
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise Errors.BAD_JSON.error() from None
    if not isinstance(obj, dict):
        raise Errors.NOT_AN_OBJECT.error()
    if _may_hold_surrogate(text):
        _check_encodable(obj)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise Errors.NO_TYPE.error()
    if kind == "signal":
        to = obj.get("to")
        if not isinstance(to, str):
            raise Errors.SIGNAL_NO_TO.error(kind)
        if "data" not in obj:
            raise Errors.SIGNAL_NO_DATA.error(kind)
        return Signal(to, obj["data"])
    if kind == "join":
        return _parse_join(obj)
    if kind == "leave":
        return Leave()
    if kind == "ping":
        return Ping()
    if kind == "outcome":
        return _parse_outcome(obj)
    raise Errors.UNKNOWN_TYPE.error(kind[:32], kind=kind[:32])


def _parse_join(obj: dict[str, Any]) -> Join:
    room = obj.get("room")
    if not isinstance(room, str):
        raise Errors.JOIN_NO_ROOM.error("join")
    if not ROOM_RE.fullmatch(room):
        raise Errors.BAD_ROOM.error("join")
    name = obj.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise Errors.NAME_NOT_STRING.error("join")
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise Errors.NAME_LENGTH.error("join", max=MAX_NAME)
    resume = obj.get("resume")
    if resume is not None and not isinstance(resume, str):
        raise Errors.RESUME_NOT_STRING.error("join")
    return Join(room, name, resume)


def _one_of(obj: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or value not in allowed:
        raise Errors.OUTCOME_FIELD.error("outcome", key=key, allowed=", ".join(allowed))
    return value


def _parse_outcome(obj: dict[str, Any]) -> Outcome:
    result = _one_of(obj, "result", OUTCOME_RESULTS)
    local = _one_of(obj, "local", CANDIDATE_TYPES)
    remote = _one_of(obj, "remote", CANDIDATE_TYPES)
    if result == "connected":
        if "none" in (local, remote):
            raise Errors.OUTCOME_FIELD.error(
                "outcome", key="local' and 'remote", allowed=", ".join(CANDIDATE_TYPES[:-1])
            )
        if obj.get("reason") is not None:
            raise Errors.OUTCOME_REASON.error("outcome")
        return Outcome(result, local, remote, "none")
    return Outcome(result, local, remote, _one_of(obj, "reason", OUTCOME_REASONS))


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def welcome_frame(
    room: str, peer: str, peers: list[dict[str, Any]], resume: str, config: dict[str, Any]
) -> str:
    return _dump(
        {
            "type": "welcome",
            "room": room,
            "peer": peer,
            "peers": peers,
            "resume": resume,
            "config": config,
        }
    )


def peer_joined_frame(peer: str, name: str | None) -> str:
    return _dump({"type": "peer-joined", "peer": peer, "name": name})


def peer_left_frame(peer: str) -> str:
    return _dump({"type": "peer-left", "peer": peer})


def signal_frame(sender: str, data_json: str) -> str:
    # `data` is spliced in already encoded: the relay never re-serialises a payload.
    return f'{{"type":"signal","from":"{sender}","data":{data_json}}}'


def encode_data(data: Any) -> str:
    """`data` of a parsed signal as JSON text; what `parse` let through always encodes,
    but a value that would not (NaN, too deep) is refused rather than relayed broken."""
    try:
        return _ENCODER.encode(data)
    except (ValueError, TypeError, RecursionError):
        raise Errors.DATA_CANNOT_RELAY.error("signal") from None


PONG_FRAME = _dump({"type": "pong"})


def reconnect_frame(after_ms: int) -> str:
    return _dump({"type": "reconnect", "after_ms": after_ms})
