"""Hub: which local connection is which peer of which room. Pure bookkeeping, no I/O.

Besides the local connections, the hub keeps a view of every member of the
rooms this node serves (local or on other nodes), fed by the bus's `joined` and
`left` events, so `unknown-peer` is decided without a round trip to Redis. It
also holds connections whose join is in flight: events for their room are
buffered for them until their `welcome` is out (see Node.join, Session._join).

A local peer's `joined` reaches the other local peers through the bus, like
everyone's; until that echo is back, the hub counts the peer as unannounced, and
its signals take the bus too rather than the direct path, so that nobody gets a
signal from a peer before that peer's `peer-joined`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Generic, TypeVar

C = TypeVar("C")

# A `joined` echo the bus lost (Redis pub/sub is at most once) must not send a peer's
# signals the long way for ever: after this long the peer counts as announced.
ANNOUNCE_WAIT = 10.0


class Hub(Generic[C]):
    def __init__(self) -> None:
        self._local: dict[str, dict[str, C]] = {}
        self._pending: dict[str, set[C]] = {}
        self._views: dict[str, set[str]] = {}
        self._unannounced: dict[str, dict[str, float]] = {}  # room → peer → give-up time
        self._peer_count = 0

    # local connections
    def add(self, room: str, peer: str, conn: C, members: set[str]) -> None:
        local = self._local.setdefault(room, {})
        if peer not in local:
            self._peer_count += 1
        local[peer] = conn
        self._views[room] = {*members, peer, *self._views.get(room, ())}

    def remove(self, room: str, peer: str, conn: C) -> bool:
        """Remove `peer` if `conn` still holds it; True if it did."""
        local = self._local.get(room)
        if local is None or local.get(peer) is not conn:
            return False
        del local[peer]
        self._peer_count -= 1
        self.note_announced(room, peer)
        if not local:
            del self._local[room]
        if room not in self._local and room not in self._pending:
            self._views.pop(room, None)
        return True

    def get(self, room: str, peer: str) -> C | None:
        local = self._local.get(room)
        return None if local is None else local.get(peer)

    def local(self, room: str) -> dict[str, C]:
        return self._local.get(room, {})

    def has_local(self, room: str) -> bool:
        return room in self._local or room in self._pending

    def rooms(self) -> Iterator[tuple[str, dict[str, C]]]:
        return iter(list(self._local.items()))

    @property
    def room_count(self) -> int:
        return len(self._local)

    @property
    def peer_count(self) -> int:
        return self._peer_count

    # joins in flight
    def add_pending(self, room: str, conn: C) -> None:
        self._pending.setdefault(room, set()).add(conn)

    def remove_pending(self, room: str, conn: C) -> None:
        pending = self._pending.get(room)
        if pending is not None:
            pending.discard(conn)
            if not pending:
                del self._pending[room]
                if room not in self._local:
                    self._views.pop(room, None)

    def pending(self, room: str) -> set[C]:
        return self._pending.get(room, set())

    # membership views
    def knows(self, room: str, peer: str) -> bool:
        return peer in self._views.get(room, ())

    def view(self, room: str) -> set[str]:
        return self._views.get(room, set())

    def set_view(self, room: str, members: set[str]) -> None:
        if room in self._local or room in self._pending:
            self._views[room] = set(members)

    def note_joined(self, room: str, peer: str) -> None:
        view = self._views.get(room)
        if view is not None:
            view.add(peer)

    def note_left(self, room: str, peer: str) -> None:
        view = self._views.get(room)
        if view is not None:
            view.discard(peer)

    # joins whose `joined` has not come back through the bus yet
    def expect_announcement(self, room: str, peer: str) -> None:
        self._unannounced.setdefault(room, {})[peer] = time.monotonic() + ANNOUNCE_WAIT

    def note_announced(self, room: str, peer: str) -> None:
        waiting = self._unannounced.get(room)
        if waiting is not None:
            waiting.pop(peer, None)
            if not waiting:
                del self._unannounced[room]

    def announced(self, room: str, peer: str) -> bool:
        until = self._unannounced.get(room, {}).get(peer)
        if until is None:
            return True
        if time.monotonic() >= until:
            self.note_announced(room, peer)
            return True
        return False
