"""Node memory before, at peak and after many peers that stop reading.

Each stuck peer is a raw socket with a tiny receive buffer that joins a room with
one well-behaved flooder and then never reads again (tests/support/stuck_peer.py);
the flooder sends it a burst of large signals, more than the node's send queue
(`--send-queue-bytes`, 1 MiB) and the socket buffers hold together. The node
must reset each of them and forget them. Peers come in waves, every stuck socket
stays open on the client side until the end (a client closing its socket would
free the node's side by itself), and RSS is read from /proc.

Loopback only, one `pea serve` process, every wait bounded.

    .venv/bin/python bench/stuck_peers.py --count 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cluster.conftest import Client, new_room
from tests.support.procs import PeaNode, pea_node
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


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def metric(node: PeaNode, name: str) -> float:
    with urllib.request.urlopen(node.metrics_url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


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


async def wait_until(check: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return True
        await asyncio.sleep(0.2)
    return False


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
    await wait_until(lambda: all(p.tcp_state() != TCP_ESTABLISHED for p in stuck), within)
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
        await wait_until(
            lambda: metric(node, "pea_connections") == 0 and metric(node, "pea_peers") == 0,
            within,
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
    with pea_node(resume_grace="1", max_connections_per_client="0") as node:
        result = asyncio.run(measure(node, args.count, args.wave, args.frames, args.within))
    print(json.dumps(asdict(result), indent=2))


if __name__ == "__main__":
    main()
