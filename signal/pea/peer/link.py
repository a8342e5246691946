"""The share link (docs/transfer-protocol.md §1): `<origin>/#<v>.<secret>.<commit>`,
and what is derived from it: the room, the signal key K and the server's URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pea.peer.exits import Exit, PeerError

VERSION = 3
_B64_22 = "[A-Za-z0-9_-]{22}"
FRAGMENT_RE = re.compile(rf"^{VERSION}\.({_B64_22})\.({_B64_22})$")
_OTHER_VERSION_RE = re.compile(rf"^(\d+)\.{_B64_22}\.{_B64_22}$")
_V1_RE = re.compile(r"^[A-Za-z0-9_-]{22,86}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes | None:
    """The bytes, or None unless `text` is their canonical base64url (no padding)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        return None
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return data if b64url(data) == text else None


def commit_of(public_key: bytes) -> str:
    return b64url(hashlib.sha256(public_key).digest()[:16])


def derive(secret: bytes) -> tuple[str, bytes]:
    """(room, K) from the secret's 16 bytes."""
    room = b64url(hmac.new(secret, f"pea room v{VERSION}".encode(), hashlib.sha256).digest())
    key = hmac.new(secret, f"pea signal key v{VERSION}".encode(), hashlib.sha256).digest()
    return room, key


@dataclass(frozen=True)
class ShareLink:
    origin: str  # scheme://host[:port], the server that serves the page and /ws
    secret: bytes
    commit: str

    @property
    def fragment(self) -> str:
        return f"{VERSION}.{b64url(self.secret)}.{self.commit}"

    @property
    def url(self) -> str:
        return f"{self.origin}/#{self.fragment}"

    @property
    def ws_url(self) -> str:
        return (
            "wss" + self.origin[5:] if self.origin.startswith("https") else "ws" + self.origin[4:]
        ) + "/ws"

    @property
    def room_and_key(self) -> tuple[str, bytes]:
        return derive(self.secret)

    @property
    def loopback(self) -> bool:
        """The server is on this machine's loopback: so is every peer that reaches it."""
        return is_loopback_host(urlsplit(self.origin).hostname or "")


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """scheme://host[:port] of an http(s) URL; PeerError(USAGE) for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PeerError(Exit.USAGE, f"not an http:// or https:// server address: {url!r}")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def parse_link(text: str, server: str | None = None) -> ShareLink:
    """A link as pasted. `server` replaces the link's own origin (`--server`)."""
    text = text.strip()
    if "#" not in text:
        raise PeerError(Exit.USAGE, "this is not a pea link: it has no #… part")
    base, fragment = text.split("#", 1)
    m = FRAGMENT_RE.fullmatch(fragment)
    secret = from_b64url(m[1]) if m else None
    if m is None or secret is None or len(secret) != 16 or len(from_b64url(m[2]) or b"") != 16:
        other = _OTHER_VERSION_RE.fullmatch(fragment)
        if other or _V1_RE.fullmatch(fragment):
            raise PeerError(
                Exit.USAGE,
                "this link was made by another version of pea, which this one does not "
                "accept: ask the sharer to share again and send you the new link",
            )
        raise PeerError(Exit.USAGE, "this is not a pea link (its #… part is malformed)")
    if server is None and not base:
        raise PeerError(Exit.USAGE, "the link names no server: give --server URL")
    origin = origin_of(server if server is not None else base)
    return ShareLink(origin, secret, m[2])


def new_share(origin: str, public_key: bytes) -> ShareLink:
    return ShareLink(origin_of(origin), os.urandom(16), commit_of(public_key))
