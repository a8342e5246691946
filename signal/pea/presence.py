"""Presence: keeps this node's members alive in the bus, and mends the node's
view of its rooms after the bus reconnects.

The heartbeat runs under the node's task supervisor (pea.tasks): an unexpected
failure is logged, counted and the loop restarted, instead of presence silently
never refreshing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pea.bus import Bus, BusUnavailable
from pea.protocol import peer_left_frame

if TYPE_CHECKING:
    from pea.config import Settings
    from pea.hub import Hub
    from pea.metrics import Metrics
    from pea.session import Session
    from pea.tasks import Supervisor

log = logging.getLogger("pea.presence")

HEARTBEAT_SLICE = 200


class Presence:
    def __init__(self, settings: Settings, bus: Bus, hub: Hub[Session], metrics: Metrics) -> None:
        self.settings = settings
        self.bus = bus
        self.hub = hub
        self.metrics = metrics

    def start(self, tasks: Supervisor) -> asyncio.Task[None]:
        return tasks.start("heartbeat", self._heartbeat_loop)

    async def refresh(self, upsert: bool = False) -> None:
        """Heartbeat every local member, a slice of rooms at a time, yielding to
        the event loop between slices: one pass over ten thousand rooms at once
        stalled every relay on the node for tens of milliseconds."""
        rooms = list(self.hub.rooms())
        for start in range(0, len(rooms), HEARTBEAT_SLICE):
            members = {
                room: {peer: session.info for peer, session in peers.items()}
                for room, peers in rooms[start : start + HEARTBEAT_SLICE]
            }
            await self.bus.heartbeat(members, upsert=upsert)
            await asyncio.sleep(0)
        if not rooms:
            await self.bus.heartbeat({}, upsert=upsert)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval)
            self.metrics.bus_healthy.set(1 if self.bus.healthy else 0)
            self.metrics.bus_reconnects.set(self.bus.reconnects)
            if not self.bus.healthy:
                continue
            try:
                await self.refresh()
            except BusUnavailable as exc:
                log.info("heartbeat skipped, bus unavailable: %s", exc)

    async def resync(self) -> None:
        """After the bus reconnects: restore our members (Redis may have lost them),
        then, once every live node has done the same, reconcile the views and
        report peers that vanished meanwhile as left."""
        await self.refresh(upsert=True)
        await asyncio.sleep(self.settings.presence_lease)
        for room, local in self.hub.rooms():
            try:
                members = set(await self.bus.members(room))
            except BusUnavailable:
                return
            for gone in self.hub.view(room) - members - set(local):
                for session in local.values():
                    session.conn.send(peer_left_frame(gone))
            self.hub.set_view(room, members | set(local))
