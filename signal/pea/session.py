"""Session: one peer on one connection. Dispatches its frames, maps failures to
`error` frames, and owns its room state (room, peer id, member info, a join in
flight and the events buffered for it).

The node coordinates what sessions share (hub, bus, room subscriptions); a
session asks it and keeps only what is its own, as centrifuge's Client does.
"""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import time
from typing import TYPE_CHECKING

from pea.bus import BusUnavailable, Envelope, member_info
from pea.errors import INVALID_FRAME_CODES, Close, Codes, Errors, ProtocolError
from pea.protocol import (
    PONG_FRAME,
    Join,
    Leave,
    Outcome,
    Ping,
    Signal,
    encode_data,
    parse,
    peer_joined_frame,
    peer_left_frame,
    reconnect_frame,
    signal_frame,
    welcome_frame,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Container

    from pea.connection import Connection
    from pea.node import Node

log = logging.getLogger("pea.session")


MAX_OUTCOMES = 64
"""Outcomes counted per connection; more are ignored (a sharer reports one per receiver)."""


def new_peer_id() -> str:
    return secrets.token_urlsafe(12)  # 96 random bits, 16 base64url characters


def wanted(env: Envelope, me: str | None, told: Container[str] | None = None) -> bool:
    """Whether a room event is news to peer `me`. Live delivery and the replay of
    events buffered during a join both ask this; `told` is, for the replay, the
    members the peer's `welcome` listed (a `joined` of one of them, or a `left`
    of someone it never heard of, is not news)."""
    if env.kind == "S":
        return env.peer == me
    if env.peer == me:
        return False
    if env.kind == "J":
        return told is None or env.peer not in told
    if env.kind == "L":
        return told is None or env.peer in told
    return False


class Session:
    __slots__ = (
        "buffered",
        "conn",
        "info",
        "joining",
        "node",
        "on_left",
        "outcomes_left",
        "peer",
        "room",
        "told",
    )

    def __init__(self, node: Node, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        self.room: str | None = None
        self.peer: str | None = None
        self.info = ""
        self.joining = False
        self.buffered: list[str] | None = None
        """Bus envelopes for the room while this session's join is in flight."""
        self.told: set[str] = set()
        """Members the `welcome` listed whose own `joined` may still come by the bus."""
        self.on_left: Callable[[], None] | None = None
        """Called when the client leaves its room and stays connected (join deadline)."""
        self.outcomes_left = MAX_OUTCOMES
        """Outcomes this connection may still have counted: one client cannot skew them."""

    def __repr__(self) -> str:
        return f"<Session room={self.room} peer={self.peer}>"

    # -- frames from the client (connection.Handler) --------------------------

    async def handle(self, conn: Connection, text: str) -> None:
        frames_in = self.node.metrics.frames_in
        try:
            message = parse(text)
            if isinstance(message, Signal):
                frames_in.inc("signal")
                await self._signal(message)
            elif isinstance(message, Join):
                frames_in.inc("join")
                await self._join(message)
            elif isinstance(message, Leave):
                frames_in.inc("leave")
                if self.room is None:
                    raise Errors.NOT_JOINED_LEAVE.error("leave")
                await self.release(departure=True)
                if self.on_left is not None:
                    self.on_left()
            elif isinstance(message, Ping):
                frames_in.inc("ping")
                conn.send(PONG_FRAME)
            elif isinstance(message, Outcome):
                frames_in.inc("outcome")
                self._outcome(message)
        except ProtocolError as exc:
            if exc.code in INVALID_FRAME_CODES:
                frames_in.inc("invalid")
            conn.error(exc)
            if exc.code == Codes.UNAVAILABLE.code and self.room is None:
                conn.close(Close.TRY_AGAIN, "signalling unavailable")

    async def disconnect(self, conn: Connection, departure: bool) -> None:
        if self.room is not None:
            await self.release(departure)

    # -- join, signal, leave ------------------------------------------------------

    async def _join(self, msg: Join) -> None:
        node, conn = self.node, self.conn
        if self.room is not None or self.joining:
            raise Errors.ALREADY_JOINED.error("join")
        if node.draining:
            conn.send(reconnect_frame(random.randint(0, 1000)))
            conn.close(Close.SERVICE_RESTART, "node draining")
            return
        if not node.bus.healthy:
            raise Errors.UNAVAILABLE_JOIN.error("join")
        room = msg.room
        resume_peer = node.signer.verify(msg.resume, room) if msg.resume else None
        info = member_info(msg.name, node.bus.node_id)
        peer = new_peer_id()
        self.joining = True
        self.buffered = []
        try:
            result = await node.join(
                self, room, peer, info, resume_peer, peer_joined_frame(peer, msg.name)
            )
        except BusUnavailable:
            raise Errors.UNAVAILABLE_JOIN.error("join") from None
        finally:
            self.joining = False
            buffered, self.buffered = self.buffered or [], None
        if result.status == "full":
            raise Errors.ROOM_FULL.error("join", limit=node.settings.max_peers_per_room)
        if conn.closing:
            # The connection went away while joining: undo, as a lost connection.
            with contextlib.suppress(BusUnavailable):
                await node.bus.away(room, result.peer)
            await node.forget_room(room)
            return
        self.room, self.peer, self.info = room, result.peer, info
        node.admit(room, result.peer, self, set(result.members))
        peers = [{"peer": p, "name": n} for p, n in result.members.items()]
        conn.send(
            welcome_frame(
                room, result.peer, peers, node.signer.issue(room, result.peer), node.client_config()
            )
        )
        # Events published while the join was in flight, minus those the member
        # list already reflects: the same test live delivery makes.
        self.told = set(result.members)
        for raw in buffered:
            env = Envelope.parse(raw)
            if wanted(env, result.peer, result.members):
                self.send_event(env)
            if env.kind == "J":
                self.told.discard(env.peer)
        log.debug("peer %s %s room %s", result.peer, result.status, room)

    async def _signal(self, msg: Signal) -> None:
        node, room, sender = self.node, self.room, self.peer
        if room is None or sender is None:
            raise Errors.NOT_JOINED_SIGNAL.error("signal")
        to = msg.to
        if to == sender or not await node.knows(room, to):
            raise Errors.UNKNOWN_PEER.error("signal")
        frame = signal_frame(sender, encode_data(msg.data))
        # Straight to a peer on this node, unless our `peer-joined` is still on its way
        # to it through the bus: a signal must not overtake it.
        local = node.hub.get(room, to) if node.hub.announced(room, sender) else None
        if local is not None:
            local.conn.send(frame)
            return
        try:
            await node.bus.publish(room, Envelope.signal(to, time.time_ns(), frame))
        except BusUnavailable:
            raise Errors.UNAVAILABLE_SIGNAL.error("signal") from None

    def _outcome(self, msg: Outcome) -> None:
        if self.room is None:
            raise Errors.NOT_JOINED_OUTCOME.error("outcome")
        if self.outcomes_left <= 0:
            return
        self.outcomes_left -= 1
        self.node.metrics.peer_connections.labels(
            msg.result, msg.local, msg.remote, msg.reason
        ).inc()

    async def release(self, departure: bool) -> None:
        """Take the peer out of its room: a departure at once, otherwise after the grace period."""
        room, peer = self.room, self.peer
        self.room = self.peer = None
        if room is not None and peer is not None:
            await self.node.release(room, peer, self, departure)

    def detach(self, reason: str) -> None:
        """The peer now lives on another connection: close this one without releasing it."""
        self.room = self.peer = None
        self.conn.close(Close.NORMAL, reason)

    # -- events for this peer ---------------------------------------------------

    def offer(self, env: Envelope) -> None:
        """A live room event: sent if it is news to this peer. A `joined` of a member
        the `welcome` listed is not: it was on its way when this peer joined (a peer id
        joins once, so it is dropped once)."""
        if env.kind == "J" and env.peer in self.told:
            self.told.discard(env.peer)
            return
        if wanted(env, self.peer):
            self.send_event(env)

    def send_event(self, env: Envelope) -> None:
        if env.kind == "L":
            self.conn.send(peer_left_frame(env.peer))
        else:
            self.conn.send(env.rest)
