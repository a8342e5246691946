"""Admission: who may open a WebSocket on this node, and the life of its place in
the node's connection set.

Every check a new `/ws` connection meets is here, in the order it meets them:

1. `Host` (with `--public-url`) and `Origin`: refused with HTTP 403 before the
   handshake completes, so a foreign page learns nothing.
2. A draining node: `reconnect` and close 1012, the client goes elsewhere.
3. A full node (`--max-connections`): `unavailable` and close 1013.
4. One client address (an IPv6 client: its /64) over
   `--max-connections-per-client`: `unavailable` and close 1013 (the client
   retries with backoff; behind a shared address a place frees up when someone
   else's tab closes).
5. Admitted: counted in the node's set and per address, handed to a new
   `Session`, and given `--join-timeout` to join a room, else `not-joined` and
   close 1008.

When the connection ends its session leaves its room, and the connection gives
up its place here: admission and removal are both in `serve`.

The client address is `scope["client"]`, which uvicorn rewrites from
`X-Forwarded-For` only for a TCP peer in `--trusted-proxies` (see cli.py).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from pea import http
from pea.connection import Connection
from pea.errors import Close, Errors, ProtocolError
from pea.protocol import reconnect_frame
from pea.session import Session

if TYPE_CHECKING:
    from pea.node import Node

log = logging.getLogger("pea.admission")


class Admission:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self.per_client: dict[str, int] = {}
        """Open admitted connections by client address; an address at zero is removed."""
        bind = self.settings.host
        self._own_hosts: tuple[str, ...] = () if bind in ("0.0.0.0", "::", "") else (bind,)

    # -- checks ------------------------------------------------------------------

    def handshake_allowed(self, ws: WebSocket) -> bool:
        settings = self.settings
        host = ws.headers.get("host")
        if settings.public_url is not None:
            server = ws.scope.get("server")
            own = self._own_hosts + ((str(server[0]),) if server else ())
            if not http.host_allowed(host, settings.public_url, own):
                log.info("refused a WebSocket for host %r", host)
                return False
        origin = ws.headers.get("origin")
        if not http.origin_allowed(origin, host, settings.allowed_origins, settings.public_url):
            log.info("refused a WebSocket from origin %s", origin)
            return False
        return True

    def refusal(self, address: str) -> ProtocolError | None:
        """The `unavailable` error for a connection that may not stay, or None."""
        if not self.node.accepting():
            return Errors.NODE_FULL.error()
        limit = self.settings.max_connections_per_client
        if limit and self.per_client.get(address, 0) >= limit:
            return Errors.TOO_MANY_FROM_ADDRESS.error(limit=limit)
        return None

    # -- the connection's life ---------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        node = self.node
        if not self.handshake_allowed(ws):
            await ws.close(Close.POLICY)  # before accept: the handshake gets HTTP 403
            return
        await ws.accept()
        if node.draining:
            await ws.send_text(reconnect_frame(0))
            await ws.close(Close.SERVICE_RESTART)
            return
        address = client_address(ws)
        refused = self.refusal(address)
        if refused is not None:
            node.metrics.errors.inc(refused.code)
            await ws.send_text(refused.frame())
            await ws.close(Close.TRY_AGAIN)
            return
        conn = Connection(ws, self.settings, node.metrics)
        session = Session(node, conn)
        self._add(conn, address)
        timers: list[asyncio.TimerHandle] = []
        # A peer that leaves its room is unjoined again: it gets a fresh period to
        # join another, not a place held for nothing.
        session.on_left = lambda: self._arm(session, timers)
        self._arm(session, timers)
        try:
            # On the way out the session leaves its room (Handler.disconnect),
            # then the connection gives up its place here.
            await conn.run(session)
        finally:
            session.on_left = None
            for handle in timers:
                handle.cancel()
            self._remove(conn, address)

    def _arm(self, session: Session, timers: list[asyncio.TimerHandle]) -> None:
        for handle in timers:
            handle.cancel()
        timers.clear()
        timers.append(
            asyncio.get_running_loop().call_later(
                self.settings.join_timeout, self._join_deadline, session, timers
            )
        )

    def _add(self, conn: Connection, address: str) -> None:
        self.per_client[address] = self.per_client.get(address, 0) + 1
        self.node.connections.add(conn)
        self.node.metrics.connections.set(len(self.node.connections))

    def _remove(self, conn: Connection, address: str) -> None:
        left = self.per_client.get(address, 0) - 1
        if left > 0:
            self.per_client[address] = left
        else:
            self.per_client.pop(address, None)
        self.node.connections.discard(conn)
        self.node.metrics.connections.set(len(self.node.connections))

    def _join_deadline(self, session: Session, timers: list[asyncio.TimerHandle]) -> None:
        """A socket that never joins holds a place for nothing: close it. A join in
        flight (a slow bus) gets one more period before the close."""
        conn = session.conn
        if session.room is not None or conn.closing:
            return
        if session.joining and len(timers) < 2:
            timers.append(
                asyncio.get_running_loop().call_later(
                    self.settings.join_timeout, self._join_deadline, session, timers
                )
            )
            return
        seconds = f"{self.settings.join_timeout:g}"
        conn.error(Errors.NO_JOIN_IN_TIME.error(seconds=seconds))
        conn.close(Close.POLICY, "no join in time")


def client_address(ws: WebSocket) -> str:
    client = ws.scope.get("client")
    return client_key(str(client[0])) if client else "unknown"


@functools.lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """What the per-client limit counts by: an IPv4 address, or an IPv6 /64. One
    IPv6 subscriber usually holds a whole /64, and would otherwise get a fresh
    allowance from each of its 2^64 addresses."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a unix socket, a test client): as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
