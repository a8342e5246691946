"""The shared harness and client framing: what every test, `make cluster` and the
benchmarks rely on (bounded stops and waits, frames the server can read)."""

from __future__ import annotations

import struct
import sys
import time

import pytest

from tests.support.client import (
    OP_TEXT,
    ZERO_MASK,
    decode_frame,
    encode_frame,
    handshake_response,
)
from tests.support.procs import Proc, free_port, redis_ping, wait_for


def unmask(frame: bytes) -> tuple[int, bytes]:
    """What a server reads from one client frame: opcode and unmasked payload."""
    n, at = frame[1] & 0x7F, 2
    if n == 126:
        n, at = struct.unpack("!H", frame[2:4])[0], 4
    elif n == 127:
        n, at = struct.unpack("!Q", frame[2:10])[0], 10
    assert frame[1] & 0x80, "client frames must be masked"
    mask, payload = frame[at : at + 4], frame[at + 4 :]
    assert len(payload) == n
    return frame[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("mask", [ZERO_MASK, b"\x01\x80\xfe\x7f"])
def test_client_frames_carry_their_payload_at_every_length_boundary(size: int, mask: bytes) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert unmask(encode_frame(OP_TEXT, payload, mask)) == (OP_TEXT, payload)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_server_frames_are_read_whole_and_only_when_complete(size: int) -> None:
    payload = b"x" * size
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + struct.pack("!H", size)
    else:
        head = bytes((0x81, 127)) + struct.pack("!Q", size)
    frame = head + payload
    buf = frame + frame[:1]  # and the first byte of the next one
    assert decode_frame(buf) == (OP_TEXT, payload, len(frame))
    assert decode_frame(buf, len(frame)) is None
    assert decode_frame(frame[:-1] if size else frame[:1]) is None


def test_a_refused_upgrade_is_an_error_and_a_partial_one_waits() -> None:
    assert handshake_response(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: web") is None
    assert handshake_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\nrest") == (
        b"HTTP/1.1 101 Switching Protocols",
        36,
    )
    with pytest.raises(ConnectionError, match="403"):
        handshake_response(b"HTTP/1.1 403 Forbidden\r\n\r\n")


def test_a_child_that_ignores_sigterm_is_killed_within_the_bound() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    proc = Proc("stubborn", [sys.executable, "-c", code])
    proc.start()
    try:
        wait_for(lambda: "up" in proc.log_text(), 10, "the child to start")
        began = time.monotonic()
        assert proc.stop(0.5) == -9  # SIGKILL after the half second
        assert time.monotonic() - began < 5
        assert not proc.running
    finally:
        proc.stop(1)
        proc.remove_log()


def test_waits_are_bounded_and_a_dead_process_ends_them_at_once() -> None:
    with pytest.raises(TimeoutError, match="nothing"):
        wait_for(lambda: False, 0.2, "nothing")
    proc = Proc("short", [sys.executable, "-c", "pass"])
    proc.start()
    try:
        proc.wait(10)
        began = time.monotonic()

        def up() -> bool:
            proc.exited()  # what PeaNode.ready and RedisServer.ping do first
            return False

        with pytest.raises(RuntimeError, match="short exited with 0"):
            wait_for(up, 30, "a process that is gone")
        assert time.monotonic() - began < 5
    finally:
        proc.remove_log()


def test_redis_ping_is_false_where_nothing_listens() -> None:
    assert redis_ping(free_port()) is False
