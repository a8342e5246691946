"""Protocol v1 (docs/protocol.md): parsing client frames and building server frames.

Parsing is pure: a text frame goes in, a typed message or a `ProtocolError`
carrying the error code comes out. Nothing here does I/O.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

ROOM_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
PEER_RE = re.compile(r"[A-Za-z0-9_-]{11,64}")
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


class Close(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008  # flood: rate limit kept being exceeded
    TOO_BIG = 1009  # oversized frames kept coming
    INTERNAL = 1011
    SERVICE_RESTART = 1012  # node draining: reconnect elsewhere and resume
    TRY_AGAIN = 1013  # bus unreachable or node full


DEPARTURE_CODES = frozenset({Close.NORMAL, Close.GOING_AWAY})


class ProtocolError(Exception):
    """One `error` frame: a code from the protocol's table and a sentence for a person."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def frame(self) -> str:
        return error_frame(self.code, self.message, self.ref)


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


Message = Join | Signal | Leave | Ping

MESSAGE_TYPES = ("join", "signal", "leave", "ping")


def _refuse_constant(name: str) -> Any:
    raise ProtocolError("bad-message", f"{name} is not a JSON number; it cannot be relayed.")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ProtocolError("bad-message", "A number is too large to be relayed.")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ProtocolError("bad-message", "A number is too large to be relayed.")
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
        raise ProtocolError(
            "bad-message", "The frame holds a lone surrogate (\\ud800-\\udfff), not text."
        ) from None
    except (ValueError, RecursionError):
        raise ProtocolError("bad-message", "The frame cannot be relayed.") from None


def parse(text: str) -> Message:
    """Parse one text frame; raise ProtocolError with the protocol's error code.

    Whatever parses can be encoded again: no lone surrogates, NaN or infinities."""
    try:
        obj = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad-json", "The frame is not valid JSON.") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad-json", "The frame must be a JSON object.")
    if _may_hold_surrogate(text):
        _check_encodable(obj)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad-message", "The message has no string field 'type'.")
    if kind == "signal":
        to = obj.get("to")
        if not isinstance(to, str):
            raise ProtocolError("bad-message", "'signal' needs a string field 'to'.", kind)
        if "data" not in obj:
            raise ProtocolError("bad-message", "'signal' needs a field 'data'.", kind)
        return Signal(to, obj["data"])
    if kind == "join":
        return _parse_join(obj)
    if kind == "leave":
        return Leave()
    if kind == "ping":
        return Ping()
    raise ProtocolError("bad-message", f"Unknown message type {kind[:32]!r}.", kind[:32])


def _parse_join(obj: dict[str, Any]) -> Join:
    room = obj.get("room")
    if not isinstance(room, str):
        raise ProtocolError("bad-message", "'join' needs a string field 'room'.", "join")
    if not ROOM_RE.fullmatch(room):
        raise ProtocolError(
            "bad-room",
            "A room is 16 to 64 characters of letters, digits, '-' and '_'.",
            "join",
        )
    name = obj.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise ProtocolError("bad-message", "'name' must be a string.", "join")
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME:
            raise ProtocolError(
                "bad-message", f"'name' must be 1 to {MAX_NAME} characters.", "join"
            )
    resume = obj.get("resume")
    if resume is not None and not isinstance(resume, str):
        raise ProtocolError("bad-message", "'resume' must be a string.", "join")
    return Join(room, name, resume)


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_frame(code: str, message: str, ref: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    return _dump(frame)


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
        raise ProtocolError(
            "bad-message", "The signal's data cannot be relayed.", "signal"
        ) from None


PONG_FRAME = _dump({"type": "pong"})


def reconnect_frame(after_ms: int) -> str:
    return _dump({"type": "reconnect", "after_ms": after_ms})
