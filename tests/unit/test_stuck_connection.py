"""Connection.abort without a transport to reset (an ASGI server other than
uvicorn): the reader still ends, the peer is released as a lost connection and
nothing stays queued. The uvicorn path is in tests/cluster/test_stuck_peers.py."""

from __future__ import annotations

import asyncio
from typing import Any

from pea.config import Settings
from pea.connection import Connection
from pea.metrics import Metrics


class StuckSocket:
    """A WebSocket whose peer never sends and never reads: every send blocks."""

    def __init__(self) -> None:
        self.sent = 0

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send_text(self, text: str) -> None:
        self.sent += 1
        await asyncio.Event().wait()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await asyncio.Event().wait()


class Recorder:
    def __init__(self) -> None:
        self.departures: list[bool] = []

    async def handle(self, conn: Connection, text: str) -> None:
        raise AssertionError("no frames expected")

    async def disconnect(self, conn: Connection, departure: bool) -> None:
        self.departures.append(departure)


async def run_stuck(settings: Settings, frames: int) -> tuple[Connection, Recorder, Metrics]:
    metrics, handler = Metrics(), Recorder()
    conn = Connection(StuckSocket(), settings, metrics)  # type: ignore[arg-type]
    task = asyncio.ensure_future(conn.run(handler))
    await asyncio.sleep(0)
    for _ in range(frames):
        conn.send('{"type":"signal","from":"x","data":"' + "y" * 30_000 + '"}')
    await asyncio.wait_for(task, 10)  # ends by itself: not cancelled from outside
    return conn, handler, metrics


def dropped(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("pea_slow_consumers_dropped_total")
    return value or 0.0


async def test_over_the_queue_limit_the_reader_ends_and_the_peer_is_lost() -> None:
    conn, handler, metrics = await run_stuck(Settings(send_queue_bytes=65536), frames=5)
    assert handler.departures == [False]
    assert conn.closing
    assert dropped(metrics) == 1


async def test_writes_that_never_complete_end_the_reader_after_send_timeout() -> None:
    conn, handler, metrics = await run_stuck(Settings(send_timeout=1), frames=1)
    assert handler.departures == [False]
    assert conn.closing
    assert dropped(metrics) == 1
