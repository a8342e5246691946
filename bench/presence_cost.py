"""Redis cost of presence on a Redis Cluster (a script, not a test): what every
node's heartbeat costs the shards, per room, which bounds how many rooms a shard
can carry at a given heartbeat interval.

Starts a 3-shard Redis Cluster on loopback (3 masters + 3 replicas), writes
`--rooms` rooms of two peers through the cluster bus, then heartbeats them all
`--rounds` times and reads each master's `INFO commandstats` (server time per
EVALSHA, i.e. per room heartbeat) and its `used_cpu_sys + used_cpu_user` delta
(the whole process, replication included). Also prints the shards' memory per room.

    .venv/bin/python -m bench.presence_cost                 # 20 000 rooms, ~1 min
    .venv/bin/python -m bench.presence_cost --rooms 2000    # quick
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psutil
import redis

from pea.bus import member_info
from pea.bus.cluster import RedisClusterBus
from tests.support.procs import LOOPBACK, RedisCluster, redis_cluster


def stats(cluster: RedisCluster) -> dict[int, tuple[int, float, float, int]]:
    """port → (EVALSHA calls, their server µs, process CPU s, used memory) per master."""
    out = {}
    for port in cluster.master_ports():
        with redis.Redis(LOOPBACK, port) as admin:
            cmd = admin.info("commandstats").get("cmdstat_evalsha", {"calls": 0, "usec": 0})
            cpu = admin.info("cpu")
            mem = admin.info("memory")["used_memory"]
        out[port] = (
            int(cmd["calls"]),
            float(cmd["usec"]),
            float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
            int(mem),
        )
    return out


async def run(cluster: RedisCluster, rooms: int, rounds: int) -> None:
    async def nothing() -> None:
        return None

    bus = RedisClusterBus(cluster.url, "bench", lease=30, grace=15)
    await bus.start(lambda room, env: None, nothing)
    try:
        names = [f"room-{i:08d}-bench" for i in range(rooms)]
        base = stats(cluster)
        for chunk in range(0, rooms, 500):
            await asyncio.gather(
                *(
                    bus.join(r, f"p{j}", member_info(None, "n"), 16, None, "F")
                    for r in names[chunk : chunk + 500]
                    for j in (1, 2)
                )
            )
        joined = stats(cluster)
        members = {r: {"p1": member_info(None, "n"), "p2": member_info(None, "n")} for r in names}
        t0 = time.monotonic()
        for _ in range(rounds):
            await bus.heartbeat(members)
        seconds = time.monotonic() - t0
        done = stats(cluster)
    finally:
        await bus.close()
    print(f"{rooms:,} rooms of 2 peers, {rounds} heartbeat rounds in {seconds:.1f} s")
    print(
        "| shard | rooms | memory per room | server µs per room heartbeat "
        "| process CPU µs per room heartbeat |"
    )
    print("|---|---|---|---|---|")
    for port in done:
        calls = done[port][0] - joined[port][0]
        usec = done[port][1] - joined[port][1]
        cpu = done[port][2] - joined[port][2]
        mem = (joined[port][3] - base[port][3]) / max(1, (joined[port][0] - base[port][0]) / 2)
        print(
            f"| {port} | {calls // rounds:,} | {mem:.0f} B | {usec / max(1, calls):.1f} "
            f"| {cpu * 1e6 / max(1, calls):.1f} |"
        )
    print(f"load average {' '.join(f'{x:.1f}' for x in psutil.getloadavg())}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rooms", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    with redis_cluster() as cluster:
        asyncio.run(run(cluster, args.rooms, args.rounds))


if __name__ == "__main__":
    main()
