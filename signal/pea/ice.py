"""What a client is told about ICE: STUN/TURN servers and whether relaying is allowed.

TURN credentials follow the TURN REST convention that coturn's `use-auth-secret`
implements: the username is `<expiry unix time>:<random>`, the password is
base64(HMAC-SHA1(shared secret, username)). The TURN server recomputes the
password from the username alone, so the node never shares the secret and
each welcome carries credentials of its own that stop working after `turn_ttl`.
The random part names no room and no peer: the relay learns nothing about who
uses it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import secrets
import time
from typing import Any

from pea.config import Settings

RELAY_ON = "on"
RELAY_OFF = "off"
RELAY_FORBIDDEN = "forbidden"


def turn_credentials(secret: str, ttl: int, now: float | None = None) -> tuple[str, str]:
    """(username, credential) valid for `ttl` seconds from `now`."""
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{secrets.token_urlsafe(9)}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def _is_turn(url: object) -> bool:
    return isinstance(url, str) and url.split(":", 1)[0].lower() in {"turn", "turns"}


def _without_turn(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept = []
    for server in servers:
        urls = server.get("urls")
        listed = [urls] if isinstance(urls, str) else list(urls or [])
        stun = [u for u in listed if not _is_turn(u)]
        if stun:
            kept.append({**server, "urls": stun})
    return kept


class IceConfig:
    """The `ice_servers` and `relay` of each welcome, fresh credentials every time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        servers = copy.deepcopy(settings.ice_servers)
        self.static = _without_turn(servers) if settings.forbid_relay else servers

    @property
    def relay(self) -> str:
        s = self.settings
        if s.forbid_relay:
            return RELAY_FORBIDDEN
        has_static_turn = any(
            _is_turn(u)
            for server in self.static
            for u in ([server["urls"]] if isinstance(server["urls"], str) else server["urls"])
        )
        return RELAY_ON if s.turn_urls or has_static_turn else RELAY_OFF

    def servers(self) -> list[dict[str, Any]]:
        """For one welcome; only ever serialised, so the static part is shared, not copied."""
        s = self.settings
        if not (s.turn_urls and s.turn_secret and not s.forbid_relay):
            return self.static
        username, credential = turn_credentials(s.turn_secret, s.turn_ttl)
        turn = {"urls": list(s.turn_urls), "username": username, "credential": credential}
        return [*self.static, turn]
