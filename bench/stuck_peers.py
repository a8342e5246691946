"""Node memory before, at peak and after many peers that stop reading.

Each stuck peer is a raw socket with a tiny receive buffer that joins a room with
one well-behaved flooder and then never reads again (tests/support/stuck_peer.py);
the flooder sends it a burst of large signals, more than the node's send queue
(`--send-queue-bytes`, 1 MiB) and the socket buffers hold together. The node
must reset each of them and forget them. Peers come in waves, every stuck socket
stays open on the client side until the end (a client closing its socket would
free the node's side by itself), and RSS is read from /proc.

Loopback only, one `pea serve` process, every wait bounded.

    .venv/bin/python -m bench.stuck_peers --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.support.client import Client, new_room
from tests.support.procs import PeaNode, pea_node, wait_for_async
from tests.support.stuck_peer import TCP_ESTABLISHED, StuckPeer

FRAME_DATA = "x" * 60_000
"""Under the 64 KiB frame limit once wrapped in a signal."""


@dataclass
class Result:
    count: int
    reset: int
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    seconds: float


def stuck_node() -> AbstractContextManager[PeaNode]:
    """The node under test; every peer of a wave (flooders and stuck) comes from
    127.0.0.1, so the per-address connection limit is lifted."""
    return pea_node(resume_grace="1", max_connections_per_client="0")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class PeakSampler:
    """Samples a process's RSS every 50 ms in a thread and keeps the maximum."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


async def settle(check: Callable[[], bool], within: float, what: str) -> None:
    """Wait for check, bounded; a timeout is a figure of the result (reset < count), not a crash."""
    with contextlib.suppress(TimeoutError):
        await wait_for_async(check, within, what, interval=0.2)


async def one_wave(node: PeaNode, size: int, frames: int, within: float) -> list[StuckPeer]:
    rooms = [new_room() for _ in range(size)]
    flooders = [await Client.open(node.ws_url) for _ in range(size)]
    for flooder, room in zip(flooders, rooms, strict=True):
        await flooder.join(room)
    stuck = [await asyncio.to_thread(StuckPeer, node.port, 4096, 536) for _ in range(size)]
    for peer, room in zip(stuck, rooms, strict=True):
        await asyncio.to_thread(peer.join, room)

    async def burst(flooder: Client, to: str) -> None:
        await flooder.expect("peer-joined")
        for _ in range(frames):  # within the rate limit's burst of 200
            await flooder.send({"type": "signal", "to": to, "data": FRAME_DATA})

    await asyncio.gather(*(burst(f, p.id or "") for f, p in zip(flooders, stuck, strict=True)))
    await settle(lambda: all(p.tcp_state() != TCP_ESTABLISHED for p in stuck), within, "resets")
    for flooder in flooders:
        await flooder.close()
    return stuck


async def measure(node: PeaNode, count: int, wave: int, frames: int, within: float) -> Result:
    assert node.proc is not None
    pid = node.proc.pid
    start = time.monotonic()
    await asyncio.sleep(1)
    before = rss_mib(pid)
    sampler = PeakSampler(pid)
    held: list[StuckPeer] = []
    try:
        for done in range(0, count, wave):
            held += await one_wave(node, min(wave, count - done), frames, within)
        # Let the grace period run out and the node report everyone left.
        await settle(
            lambda: node.metric("pea_connections") == 0 and node.metric("pea_peers") == 0,
            within,
            "the node forgets them",
        )
        await asyncio.sleep(2)
        after = rss_mib(pid)
        reset = sum(1 for p in held if p.tcp_state() != TCP_ESTABLISHED)
    finally:
        peak = sampler.stop()
        for p in held:
            p.close()
    return Result(count, reset, before, peak, after, time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="stuck peers in all")
    parser.add_argument("--wave", type=int, default=100, help="stuck peers flooded at once")
    parser.add_argument("--frames", type=int, default=24, help="60 kB signals sent to each")
    parser.add_argument("--within", type=float, default=60, help="bound on every wait, seconds")
    args = parser.parse_args()
    with stuck_node() as node:
        result = asyncio.run(measure(node, args.count, args.wave, args.frames, args.within))
    print(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
