"""Signed resume tokens: `base64url(room.peer).base64url(hmac)`.

A token only names a room and a peer; whether it still works is decided by the
bus (the peer must still be a member, within its grace period), so the token
itself needs no expiry. The HMAC makes it unforgeable without the cluster's secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_CONTEXT = b"pea/resume/v1\x00"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResumeSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = hashlib.sha256(_CONTEXT + secret).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:20]

    def issue(self, room: str, peer: str) -> str:
        payload = f"{room}.{peer}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, token: str, room: str) -> str | None:
        """The peer id the token was issued for in `room`, or None if it is not valid there."""
        if len(token) > 512:
            return None
        try:
            payload_b64, mac_b64 = token.split(".")
            payload = _unb64(payload_b64)
            mac = _unb64(mac_b64)
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        token_room, _, peer = payload.decode().partition(".")
        if token_room != room or not peer:
            return None
        return peer
