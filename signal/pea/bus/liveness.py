"""When a pub/sub connection to Redis counts as dead.

By the age of its oldest unanswered ping, not by the time since its last byte: a
node whose event loop was busy for a while sent no ping meanwhile, and that must
not look like a dead Redis.
"""

from __future__ import annotations

import time


class PingWatch:
    def __init__(self, interval: float, dead_after: float) -> None:
        self.interval = interval
        self.dead_after = dead_after
        self._unanswered_since: float | None = None
        self._last_ping = time.monotonic()

    def heard(self) -> None:
        """Something arrived: every ping sent before it is answered."""
        self._unanswered_since = None

    def ping_due(self, now: float) -> bool:
        """Whether to send a ping now; if so, it counts as sent."""
        if now - self._last_ping < self.interval:
            return False
        self._last_ping = now
        if self._unanswered_since is None:
            self._unanswered_since = now
        return True

    def check(self, now: float) -> None:
        """Raise TimeoutError once a ping has gone unanswered for `dead_after`."""
        if self._unanswered_since is not None and now - self._unanswered_since > self.dead_after:
            raise TimeoutError(f"Redis did not answer a ping for {self.dead_after:.0f} s")
