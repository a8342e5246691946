"""Signed signals (docs/transfer-protocol.md §2): seals what this peer sends and
judges what it receives, for one room. A port of the web client's SignalAuth."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pea.peer.link import VERSION, b64url, commit_of, derive, from_b64url

_PEER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
_KIND_RE = re.compile(r"^[a-z][a-z-]{0,31}$")
SHARER_KINDS = frozenset({"offer", "candidate", "refuse"})
MAX_SEQ = 2**53 - 1


@dataclass(frozen=True)
class Opened:
    """The verdict on one envelope: ok, or why not (malformed, bad-mac, impostor, replay)."""

    ok: bool
    kind: str
    payload: str = ""
    why: str = ""
    claims_sharer: bool = False


def message(room: str, kind: str, sender: str, to: str, sid: str, seq: int, payload: str) -> bytes:
    """M: the bytes both the MAC and the signature cover."""
    return (
        f"pea-signal-v{VERSION}\n{room}\n{kind}\n{sender}\n{to}\n{sid}\n{seq}\n{payload}".encode()
    )


class SignalAuth:
    def __init__(
        self, secret: bytes, *, commit: str | None = None, key: Ed25519PrivateKey | None = None
    ) -> None:
        self.room, self.k = derive(secret)
        self.commit = commit
        self.key = key
        self.pk = (
            b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
            if key is not None
            else None
        )
        self.sid = b64url(os.urandom(16))
        self.seq = 0
        self.peers: dict[str, tuple[str, int]] = {}  # sender -> (sid, last seq) accepted

    @property
    def is_sharer(self) -> bool:
        return self.key is not None

    def _mac(self, m: bytes) -> str:
        return hmac.new(self.k, m, hashlib.sha256).hexdigest()

    def seal(self, kind: str, sender: str, to: str, payload: str) -> dict[str, Any]:
        self.seq += 1
        m = message(self.room, kind, sender, to, self.sid, self.seq, payload)
        env: dict[str, Any] = {
            "v": VERSION,
            "kind": kind,
            "payload": payload,
            "sid": self.sid,
            "seq": self.seq,
            "mac": self._mac(m),
        }
        if self.key is not None:
            env["pk"] = self.pk
            env["sig"] = b64url(self.key.sign(m))
        return env

    def claims_sharer(self, data: Any) -> bool:
        """Does the envelope carry the key the link commits to (whatever else is wrong)?"""
        if self.commit is None or not isinstance(data, dict) or not isinstance(data.get("pk"), str):
            return False
        pk = from_b64url(data["pk"])
        return pk is not None and len(pk) == 32 and commit_of(pk) == self.commit

    def _signed_by_sharer(self, data: dict[str, Any], m: bytes) -> bool:
        if not self.claims_sharer(data) or not isinstance(data.get("sig"), str):
            return False
        sig = from_b64url(data["sig"])
        pk = from_b64url(data["pk"])
        if sig is None or len(sig) != 64 or pk is None:
            return False
        try:
            # OpenSSL's Ed25519 verification is strict RFC 8032 (no ZIP-215 leniency).
            Ed25519PublicKey.from_public_bytes(pk).verify(sig, m)
        except (InvalidSignature, ValueError):
            return False
        return True

    def open(self, data: Any, sender: Any, to: str) -> Opened:
        kind = "?"
        if (
            isinstance(data, dict)
            and isinstance(data.get("kind"), str)
            and _KIND_RE.fullmatch(data["kind"])
        ):
            kind = data["kind"]

        def refuse(why: str) -> Opened:
            return Opened(False, kind, why=why, claims_sharer=self.claims_sharer(data))

        if not (
            isinstance(data, dict)
            and type(data.get("v")) is int
            and data["v"] == VERSION
            and kind != "?"
            and isinstance(data.get("payload"), str)
            and isinstance(data.get("sid"), str)
            and _SID_RE.fullmatch(data["sid"])
            and type(data.get("seq")) is int
            and 1 <= data["seq"] <= MAX_SEQ
            and isinstance(sender, str)
            and _PEER_RE.fullmatch(sender)
            and _PEER_RE.fullmatch(to)
        ):
            return refuse("malformed")
        m = message(self.room, kind, sender, to, data["sid"], data["seq"], data["payload"])
        mac = data.get("mac")
        if not isinstance(mac, str) or not hmac.compare_digest(self._mac(m), mac):
            return refuse("bad-mac")
        if self.is_sharer:
            if kind == "offer":
                return refuse("impostor")
        elif kind in SHARER_KINDS and not self._signed_by_sharer(data, m):
            return refuse("impostor")
        last = self.peers.get(sender)
        if last is not None and (last[0] != data["sid"] or data["seq"] <= last[1]):
            return refuse("replay")
        self.peers[sender] = (data["sid"], data["seq"])
        return Opened(True, kind, data["payload"])
