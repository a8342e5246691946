"""A small STUN/TURN client (RFC 5389, RFC 5780's OTHER-ADDRESS, RFC 5766's Allocate):
just enough for `pea doctor` to see this host's address as a STUN server sees it, to
tell how its NAT maps, and to check that TURN credentials work. Blocking UDP, bounded
by a timeout and a few retransmissions; every reply is checked against its request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass, field

MAGIC = 0x2112A442
BINDING, ALLOCATE, REFRESH = 0x0001, 0x0003, 0x0004
SUCCESS, ERROR = 0x0100, 0x0110

MAPPED_ADDRESS = 0x0001
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
LIFETIME = 0x000D
REALM = 0x0014
NONCE = 0x0015
XOR_RELAYED_ADDRESS = 0x0016
REQUESTED_TRANSPORT = 0x0019
XOR_MAPPED_ADDRESS = 0x0020
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

UDP = 17

Address = tuple[str, int]


class StunError(Exception):
    """No usable answer: a timeout, a malformed reply, or an error response."""


@dataclass
class Response:
    kind: int
    attrs: dict[int, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind & 0x0110 == SUCCESS

    def address(self, attr: int) -> Address | None:
        raw = self.attrs.get(attr)
        if raw is None:
            return None
        xored = attr in (XOR_MAPPED_ADDRESS, XOR_RELAYED_ADDRESS)
        return _decode_address(raw, xored)

    @property
    def error(self) -> tuple[int, str] | None:
        raw = self.attrs.get(ERROR_CODE)
        if raw is None or len(raw) < 4:
            return None
        return raw[2] * 100 + raw[3], raw[4:].decode("utf-8", "replace")


def _decode_address(raw: bytes, xored: bool) -> Address:
    if len(raw) < 8 or raw[1] not in (1, 2):
        raise StunError("malformed address attribute")
    port = struct.unpack("!H", raw[2:4])[0]
    if raw[1] != 1:
        raise StunError("IPv6 mapped addresses are not supported here")
    ip = struct.unpack("!I", raw[4:8])[0]
    if xored:
        port ^= MAGIC >> 16
        ip ^= MAGIC
    return str(ipaddress.IPv4Address(ip)), port


def _attr(kind: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * pad


def encode(
    kind: int, tid: bytes, attrs: list[tuple[int, bytes]], key: bytes | None = None
) -> bytes:
    """A STUN message; with `key`, MESSAGE-INTEGRITY (HMAC-SHA1) ends it."""
    body = b"".join(_attr(k, v) for k, v in attrs)
    if key is None:
        return struct.pack("!HHI", kind, len(body), MAGIC) + tid + body
    # The integrity covers the header with a length that already counts itself (24 bytes).
    head = struct.pack("!HHI", kind, len(body) + 24, MAGIC) + tid
    mac = hmac.new(key, head + body, hashlib.sha1).digest()
    return head + body + _attr(MESSAGE_INTEGRITY, mac)


def decode(data: bytes, tid: bytes) -> Response:
    if len(data) < 20:
        raise StunError("reply too short for STUN")
    kind, length, magic = struct.unpack("!HHI", data[:8])
    if magic != MAGIC or data[8:20] != tid or len(data) < 20 + length:
        raise StunError("not a reply to our request")
    attrs: dict[int, bytes] = {}
    pos, end = 20, 20 + length
    while pos + 4 <= end:
        atype, alen = struct.unpack("!HH", data[pos : pos + 4])
        value = data[pos + 4 : pos + 4 + alen]
        if len(value) != alen:
            raise StunError("truncated attribute")
        attrs.setdefault(atype, value)
        pos += 4 + alen + (-alen % 4)
    return Response(kind, attrs)


def transact(
    sock: socket.socket,
    server: Address,
    kind: int,
    attrs: list[tuple[int, bytes]] | None = None,
    key: bytes | None = None,
    timeout: float = 3.0,
) -> Response:
    """Send one request (retransmitted: UDP loses packets) and wait for its reply."""
    tid = os.urandom(12)
    message = encode(kind, tid, attrs or [], key)
    tries = 4
    sock.settimeout(timeout / tries)
    for _ in range(tries):
        sock.sendto(message, server)
        try:
            while True:
                data, _ = sock.recvfrom(2048)
                try:
                    return decode(data, tid)
                except StunError:
                    continue  # a stray or late packet: keep waiting for ours
        except TimeoutError:
            continue
    raise StunError(f"no answer from {server[0]}:{server[1]} within {timeout:g} s")


def binding(sock: socket.socket, server: Address, timeout: float = 3.0) -> Response:
    reply = transact(sock, server, BINDING, timeout=timeout)
    if not reply.ok:
        raise StunError(f"binding refused: {reply.error}")
    return reply


def mapped(reply: Response) -> Address | None:
    return reply.address(XOR_MAPPED_ADDRESS) or reply.address(MAPPED_ADDRESS)


def turn_allocate(
    sock: socket.socket, server: Address, username: str, password: str, timeout: float = 3.0
) -> Address:
    """Allocate a UDP relay with long-term credentials, release it; its relayed address."""
    transport = [(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))]
    first = transact(sock, server, ALLOCATE, transport, timeout=timeout)
    if first.ok:
        raise StunError("the TURN server allocated without asking for credentials")
    realm, nonce = first.attrs.get(REALM), first.attrs.get(NONCE)
    if first.error is None or first.error[0] != 401 or realm is None or nonce is None:
        raise StunError(f"unexpected answer to an Allocate: {first.error}")
    key = hashlib.md5(f"{username}:{realm.decode()}:{password}".encode()).digest()
    auth = [(USERNAME, username.encode()), (REALM, realm), (NONCE, nonce)]
    reply = transact(sock, server, ALLOCATE, transport + auth, key, timeout)
    if not reply.ok:
        code = reply.error
        raise StunError(f"credentials refused: {code[0]} {code[1]}" if code else "refused")
    relayed = reply.address(XOR_RELAYED_ADDRESS)
    if relayed is None:
        raise StunError("the allocation has no relayed address")
    # Release it at once: a lifetime of 0 (best effort, nobody waits on the relay).
    with contextlib.suppress(StunError):
        transact(sock, server, REFRESH, [(LIFETIME, b"\0\0\0\0"), *auth], key, timeout / 2)
    return relayed
