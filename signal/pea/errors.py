"""The error catalogue: every `error` frame the server sends, in one place.

A `Code` is what the protocol knows about an error code: what it means (the
table in docs/protocol.md is generated from it), the close code that may follow
it, and what a client should do (web/src/errors.gen.js is generated from it,
see `pea errors`). An `Error` is one sentence a person reads for a code,
templated where it has a parameter. Code raises errors by name:

    raise Errors.UNAVAILABLE_JOIN.error(ref="join")
    conn.error(Errors.TOO_LARGE.error(limit=65536))

Like Starlette's `HTTPException`, the exception (`ProtocolError`) is small: a
code, a message and the `type` of the frame it answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum


class Close(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008  # flood: rate limit kept being exceeded; no join in time
    TOO_BIG = 1009  # oversized frames kept coming
    INTERNAL = 1011
    SERVICE_RESTART = 1012  # node draining: reconnect elsewhere and resume
    TRY_AGAIN = 1013  # bus unreachable or node full


DEPARTURE_CODES = frozenset({Close.NORMAL, Close.GOING_AWAY})
"""Close codes from a client that mean "I left" rather than "I was cut off"."""


class ProtocolError(Exception):
    """One `error` frame: a code from the catalogue and a sentence for a person."""

    def __init__(self, code: str, message: str, ref: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def frame(self) -> str:
        frame: dict[str, str] = {"type": "error", "code": self.code, "message": self.message}
        if self.ref is not None:
            frame["ref"] = self.ref
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    meaning: str
    """For docs/protocol.md: when the code is sent."""
    close: Close | None
    """The close code that may follow (`meaning` says when), or None: it never closes."""
    retry: bool
    """Trying the same thing again later may succeed (the client backs off and retries)."""
    final: bool = False
    """The room refuses this client for good: the client stops and says why."""

    def says(self, sentence: str) -> Error:
        return Error(self, sentence)


@dataclass(frozen=True, slots=True)
class Error:
    kind: Code
    sentence: str
    """A sentence for a person; `{name}` fields are filled in by `error(**params)`."""

    @property
    def code(self) -> str:
        return self.kind.code

    def error(self, ref: str | None = None, **params: object) -> ProtocolError:
        return ProtocolError(self.kind.code, self.sentence.format(**params), ref)


class Codes:
    BAD_JSON = Code(
        "bad-json",
        "the frame is not a JSON object (a binary frame too), or is nested too deeply to parse",
        None,
        retry=False,
    )
    BAD_MESSAGE = Code(
        "bad-message",
        "unknown `type`, or a missing or mistyped field; or JSON that cannot be relayed "
        "intact: a lone surrogate, `NaN`, `Infinity`, `-Infinity`, a number out of range "
        "(see [Transport](#transport))",
        None,
        retry=False,
    )
    TOO_LARGE = Code(
        "too-large",
        "frame over the limit (default 64 KiB); closes with 1009 if repeated",
        Close.TOO_BIG,
        retry=False,
    )
    BAD_ROOM = Code("bad-room", "malformed room", None, retry=False, final=True)
    ROOM_FULL = Code(
        "room-full",
        "the room holds its maximum number of peers (default 16)",
        None,
        retry=False,
        final=True,
    )
    NOT_JOINED = Code(
        "not-joined",
        "`signal`, `leave` or `outcome` before `join`; or no `join` within `--join-timeout` "
        "(closes with 1008)",
        Close.POLICY,
        retry=True,
    )
    ALREADY_JOINED = Code("already-joined", "`join` while in a room", None, retry=False)
    UNKNOWN_PEER = Code(
        "unknown-peer", "`to` names no other peer of your room (yourself included)", None, False
    )
    RATE_LIMITED = Code(
        "rate-limited",
        "too many frames; the frame was dropped; closes with 1008 if it goes on",
        Close.POLICY,
        retry=True,
    )
    UNAVAILABLE = Code(
        "unavailable",
        "the cluster bus is unreachable, the node is full, or your address holds too many "
        "connections; try again later (closes with 1013)",
        Close.TRY_AGAIN,
        retry=True,
    )

    @classmethod
    def all(cls) -> tuple[Code, ...]:
        return tuple(v for v in vars(cls).values() if isinstance(v, Code))


class Errors:
    BAD_JSON = Codes.BAD_JSON.says("The frame is not valid JSON.")
    NOT_AN_OBJECT = Codes.BAD_JSON.says("The frame must be a JSON object.")
    BINARY_FRAME = Codes.BAD_JSON.says("Frames must be text frames holding JSON.")

    NOT_A_NUMBER = Codes.BAD_MESSAGE.says("{name} is not a JSON number; it cannot be relayed.")
    NUMBER_TOO_LARGE = Codes.BAD_MESSAGE.says("A number is too large to be relayed.")
    LONE_SURROGATE = Codes.BAD_MESSAGE.says(
        "The frame holds a lone surrogate (\\ud800-\\udfff), not text."
    )
    CANNOT_RELAY = Codes.BAD_MESSAGE.says("The frame cannot be relayed.")
    DATA_CANNOT_RELAY = Codes.BAD_MESSAGE.says("The signal's data cannot be relayed.")
    NOT_UNICODE = Codes.BAD_MESSAGE.says("The message cannot be relayed: it is not valid Unicode.")
    NO_TYPE = Codes.BAD_MESSAGE.says("The message has no string field 'type'.")
    UNKNOWN_TYPE = Codes.BAD_MESSAGE.says("Unknown message type {kind!r}.")
    SIGNAL_NO_TO = Codes.BAD_MESSAGE.says("'signal' needs a string field 'to'.")
    SIGNAL_NO_DATA = Codes.BAD_MESSAGE.says("'signal' needs a field 'data'.")
    JOIN_NO_ROOM = Codes.BAD_MESSAGE.says("'join' needs a string field 'room'.")
    NAME_NOT_STRING = Codes.BAD_MESSAGE.says("'name' must be a string.")
    NAME_LENGTH = Codes.BAD_MESSAGE.says("'name' must be 1 to {max} characters.")
    RESUME_NOT_STRING = Codes.BAD_MESSAGE.says("'resume' must be a string.")
    OUTCOME_FIELD = Codes.BAD_MESSAGE.says("'outcome' needs '{key}', one of: {allowed}.")
    OUTCOME_REASON = Codes.BAD_MESSAGE.says("A 'connected' outcome has no 'reason'.")

    TOO_LARGE = Codes.TOO_LARGE.says("Frames may be at most {limit} bytes.")
    BAD_ROOM = Codes.BAD_ROOM.says("A room is 16 to 64 characters of letters, digits, '-' and '_'.")
    ROOM_FULL = Codes.ROOM_FULL.says("This room already holds {limit} peers.")

    NOT_JOINED_LEAVE = Codes.NOT_JOINED.says("Join a room before leaving it.")
    NOT_JOINED_SIGNAL = Codes.NOT_JOINED.says("Join a room before sending signals.")
    NOT_JOINED_OUTCOME = Codes.NOT_JOINED.says("Join a room before reporting outcomes.")
    NO_JOIN_IN_TIME = Codes.NOT_JOINED.says("No room joined within {seconds} s; connect again.")
    ALREADY_JOINED = Codes.ALREADY_JOINED.says("You are already in a room; leave it first.")
    UNKNOWN_PEER = Codes.UNKNOWN_PEER.says("No other peer of your room has that id.")
    RATE_LIMITED = Codes.RATE_LIMITED.says("Too many frames; this one was dropped.")

    UNAVAILABLE_JOIN = Codes.UNAVAILABLE.says(
        "Signalling is unavailable right now; try again shortly."
    )
    UNAVAILABLE_SIGNAL = Codes.UNAVAILABLE.says(
        "Signalling is unavailable right now; the signal was not delivered."
    )
    NODE_FULL = Codes.UNAVAILABLE.says("This server is at capacity; try again shortly.")
    TOO_MANY_FROM_ADDRESS = Codes.UNAVAILABLE.says(
        "Too many connections from your network address (at most {limit}); "
        "close other pea tabs or try again shortly."
    )


CODES: dict[str, Code] = {c.code: c for c in Codes.all()}
INVALID_FRAME_CODES = frozenset({Codes.BAD_JSON.code, Codes.BAD_MESSAGE.code})
"""Codes that mean the frame itself was unusable (counted as `invalid` frames)."""


# -- generated artefacts -----------------------------------------------------------

DOCS_BEGIN = "<!-- errors: generated by `pea errors markdown`; do not edit -->"
DOCS_END = "<!-- /errors -->"


def markdown_table() -> str:
    rows = ["| code | meaning | close code | client retries |", "|---|---|---|---|"]
    for c in Codes.all():
        close = str(int(c.close)) if c.close is not None else "—"
        retry = "yes" if c.retry else ("no: stops" if c.final else "no")
        rows.append(f"| `{c.code}` | {c.meaning} | {close} | {retry} |")
    return "\n".join(rows)


def js_module() -> str:
    lines = [
        "// Generated by `pea errors js` from signal/pea/errors.py; do not edit.",
        "// code → retry: trying again later may succeed; final: the room refuses this",
        "// client for good; close: the close code that may follow (null: none).",
        "export const ERRORS = Object.freeze({",
    ]
    for c in Codes.all():
        close = "null" if c.close is None else str(int(c.close))
        lines.append(
            f'  "{c.code}": Object.freeze({{ retry: {str(c.retry).lower()}, '
            f"final: {str(c.final).lower()}, close: {close} }}),"
        )
    lines.append("});")
    return "\n".join(lines) + "\n"
