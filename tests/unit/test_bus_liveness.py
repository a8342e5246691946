"""A Redis pub/sub connection counts as dead by the age of an unanswered ping, not
by silence: a node whose event loop stalled must not give up on a healthy Redis."""

from __future__ import annotations

import pytest

from pea.bus.liveness import PingWatch


def test_silence_without_an_unanswered_ping_is_not_death() -> None:
    watch = PingWatch(interval=1.0, dead_after=5.0)
    start = watch._last_ping
    watch.check(start + 60)  # the event loop was busy for a minute: nothing was asked
    assert watch.ping_due(start + 60)
    watch.heard()
    watch.check(start + 120)


def test_a_ping_unanswered_for_dead_after_is_death() -> None:
    watch = PingWatch(interval=1.0, dead_after=5.0)
    start = watch._last_ping
    assert not watch.ping_due(start + 0.5)
    assert watch.ping_due(start + 1)
    assert watch.ping_due(start + 2)  # a second ping does not restart the clock
    watch.check(start + 6)
    with pytest.raises(TimeoutError, match="did not answer a ping for 5 s"):
        watch.check(start + 6.5)
