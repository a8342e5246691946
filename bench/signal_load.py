"""Load benchmark of the signalling cluster (a script, not a test).

Against one node on the memory bus, two nodes on one Redis and two nodes on a
3-shard Redis Cluster (3 masters + 3 replicas, sharded pub/sub), it measures:

* idle-joined connections a node holds and its RSS per connection;
* signals per second through the cluster (closed loop) and node CPU per relayed signal;
* client-side send-to-receive latency p50/p99 at a paced rate (cross-node on Redis);
* Redis connections per node with 10 peers, with every peer joined, and after the load;
* on the cluster: redis-server CPU per signal per shard and the rooms each shard holds.

Everything runs on loopback: a private `redis-server`, `pea serve` subprocesses and
client worker processes speaking a minimal raw WebSocket client (zero mask key,
asyncio protocol on uvloop) so the load generator costs as little CPU as possible.
Everything started is stopped in `finally`, Ctrl-C included.

    .venv/bin/python -m bench.signal_load            # full table, a few minutes
    .venv/bin/python -m bench.signal_load --quick    # under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any, cast

import psutil

from tests.support.client import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    decode_frame,
    encode,
    encode_frame,
    handshake_request,
    handshake_response,
    join_frame,
)
from tests.support.procs import PeaNode, Proc, RedisServer, redis_cluster, redis_server

SECRET = "bench-secret-" + secrets.token_hex(16)
# A realistic trickled ICE candidate: most signalling frames look like this.
CANDIDATE = (
    "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.2 "
    "rport 46154 generation 0 ufrag EEtu network-id 1 network-cost 10"
)
IDLE, CLOSED_LOOP, PACED = 0, 1, 2
# Shipped server ws implementation (signal/pea/cli.py); --ws overrides it for a comparison.
SHIPPED_WS = "websockets-sansio"


# --------------------------------------------------------------------------------------
# Client side: worker processes holding thousands of raw WebSocket connections each.
# --------------------------------------------------------------------------------------


class Peer(asyncio.Protocol):
    """One client WebSocket. Server frames are unmasked and unfragmented; client frames
    use the all-zero mask key, which is valid and makes masking a no-op."""

    def __init__(self, worker: Worker, request: bytes) -> None:
        self.worker = worker
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reply: asyncio.Future[dict[str, Any]] | None = None
        self.peer_id = ""
        self.pair: Pair | None = None  # set on receivers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.worker.lost += 1
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(ConnectionError("closed while waiting for a reply"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            try:
                done = handshake_response(buf)
            except ConnectionError as exc:
                if not self.opened.done():
                    self.opened.set_exception(exc)
                self.abort()
                return
            if done is None:
                return
            del buf[: done[1]]
            self.upgraded = True
            self.opened.set_result(None)
        pos = 0
        while (frame := decode_frame(buf, pos)) is not None:
            opcode, payload, pos = frame
            if opcode == OP_TEXT:
                self.on_text(payload.decode())
            elif opcode == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.abort()
                break
        del buf[:pos]

    def on_text(self, text: str) -> None:
        if text.startswith('{"type":"signal"'):
            self.worker.on_signal(self, text)
            return
        msg = json.loads(text)
        kind = msg.get("type")
        if kind == "error":
            self.worker.errors[msg.get("code", "?")] += 1
        if kind in ("welcome", "error") and self.reply is not None and not self.reply.done():
            self.reply.set_result(msg)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.write(encode_frame(opcode, payload))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def request_reply(self, text: str, wait: float) -> dict[str, Any]:
        self.reply = asyncio.get_running_loop().create_future()
        self.send_text(text)
        try:
            return await asyncio.wait_for(self.reply, wait)
        finally:
            self.reply = None


@dataclass(eq=False)
class Pair:
    sender: Peer
    receiver: Peer
    prefix: str  # the signal frame up to the send timestamp
    suffix: str


def signal_parts(to: str) -> tuple[str, str]:
    return (
        f'{{"type":"signal","to":"{to}","data":{{"t":',
        f',"candidate":"{CANDIDATE}","sdpMid":"0","sdpMLineIndex":0}}}}',
    )


def sent_ns(text: str) -> int:
    start = text.find('"t":', 30) + 4
    return int(text[start : text.find(",", start)])


class Worker:
    def __init__(self) -> None:
        self.pairs: list[Pair] = []
        self.peers: list[Peer] = []
        self.errors: Counter[str] = Counter()
        self.lost = 0
        self.received = 0
        self.mode = IDLE
        self.window = (0, 0)
        self.latencies: list[int] = []

    def on_signal(self, peer: Peer, text: str) -> None:
        now = time.monotonic_ns()
        self.received += 1
        if self.mode == CLOSED_LOOP:
            pair = peer.pair
            if pair is not None:
                pair.sender.send_text(pair.prefix + str(now) + pair.suffix)
        elif self.mode == PACED:
            t = sent_ns(text)
            if self.window[0] <= t < self.window[1]:
                self.latencies.append(now - t)

    async def open_peer(self, port: int, room: str, wait: float) -> Peer:
        loop = asyncio.get_running_loop()
        request = handshake_request(f"127.0.0.1:{port}")
        _, peer = await asyncio.wait_for(
            loop.create_connection(lambda: Peer(self, request), "127.0.0.1", port), wait
        )
        self.peers.append(peer)
        await asyncio.wait_for(peer.opened, wait)
        reply = await peer.request_reply(encode(join_frame(room)), wait)
        if reply.get("type") != "welcome":
            peer.abort()
            raise ConnectionError(f"join refused: {reply.get('code')}")
        peer.peer_id = str(reply["peer"])
        return peer

    async def connect(
        self, port_a: int, port_b: int, pairs: int, concurrency: int
    ) -> dict[str, Any]:
        """Open `pairs` rooms of two peers: the sender on port A, the receiver on port B."""
        began = time.monotonic()
        limit = asyncio.Semaphore(concurrency)
        failures: Counter[str] = Counter()

        async def one() -> None:
            async with limit:
                room = secrets.token_urlsafe(16)
                try:
                    sender = await self.open_peer(port_a, room, 20)
                    receiver = await self.open_peer(port_b, room, 20)
                except (TimeoutError, OSError, ConnectionError) as exc:
                    failures[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    return
                prefix, suffix = signal_parts(receiver.peer_id)
                pair = Pair(sender, receiver, prefix, suffix)
                receiver.pair = pair
                self.pairs.append(pair)

        await asyncio.gather(*(one() for _ in range(pairs)))
        return {
            "pairs": len(self.pairs),
            "failures": dict(failures),
            "seconds": time.monotonic() - began,
        }

    async def closed_loop(
        self, pairs: int, window: int, warmup: float, duration: float
    ) -> dict[str, Any]:
        """Each pair keeps `window` signals in flight: a receipt triggers the next send."""
        loop = asyncio.get_running_loop()
        active = self.pairs[:pairs]
        counts: list[int] = []
        self.received = 0
        self.mode = CLOSED_LOOP
        for pair in active:
            for _ in range(window):
                pair.sender.send_text(pair.prefix + str(time.monotonic_ns()) + pair.suffix)
        loop.call_later(warmup, lambda: counts.append(self.received))
        await asyncio.sleep(warmup + duration)
        counts.append(self.received)
        self.mode = IDLE
        await asyncio.sleep(1.0)  # let the frames in flight land before the next phase
        return {"received": counts[-1] - counts[0] if len(counts) == 2 else 0}

    async def paced(
        self, pairs: int, rate: float, warmup: float, duration: float
    ) -> dict[str, Any]:
        """Open loop: `rate` signals/s spread over the pairs; latency of those sent in the
        measurement window, taken at the receiver (same process, same monotonic clock)."""
        active = self.pairs[:pairs]
        self.latencies = []
        start = time.monotonic_ns()
        w0 = start + int(warmup * 1e9)
        end = w0 + int(duration * 1e9)
        self.window = (w0, end)
        self.mode = PACED
        sent = in_window = index = 0
        while True:
            now = time.monotonic_ns()
            if now >= end or not active:
                break
            due = int((now - start) * rate / 1e9) - sent
            for _ in range(due):
                pair = active[index % len(active)]
                index += 1
                pair.sender.send_text(pair.prefix + str(time.monotonic_ns()) + pair.suffix)
            sent += due
            if now >= w0:
                in_window += due
            await asyncio.sleep(0.0005)
        await asyncio.sleep(1.0)
        self.mode = IDLE
        return {"sent": in_window, "received": len(self.latencies), "latencies": self.latencies}

    def stats(self) -> dict[str, Any]:
        return {"errors": dict(self.errors), "lost": self.lost}

    def close(self) -> None:
        for peer in self.peers:
            peer.abort()
        self.peers.clear()
        self.pairs.clear()


def worker_main(pipe: Pipe) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_worker_loop(pipe))


async def _worker_loop(pipe: Pipe) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker()
    while True:
        command, kwargs = await loop.run_in_executor(None, pipe.recv)
        if command == "quit":
            worker.close()
            pipe.send({})
            return
        if command == "close":
            worker.close()
            result: dict[str, Any] = {}
        elif command == "stats":
            result = worker.stats()
        else:
            result = await getattr(worker, command)(**kwargs)
        pipe.send(result)


class Clients:
    """A pool of worker processes; each command goes to all and waits for all answers."""

    def __init__(self, count: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def run(
        self,
        command: str,
        timeout: float,
        per_worker: list[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        for i, pipe in enumerate(self.pipes):
            pipe.send((command, per_worker[i] if per_worker else kwargs))
        results = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"client workers did not finish {command!r} in {timeout:.0f} s")
            results.append(pipe.recv())
        return results

    def cpu(self) -> float:
        return sum(_cpu(p.pid) for p in self.procs)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run("quit", 15)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# --------------------------------------------------------------------------------------
# Server side: pea nodes and redis-server as subprocesses.
# --------------------------------------------------------------------------------------


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(t.user + t.system)


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


class NodeProc(PeaNode):
    """A node of the benchmark: the harness's PeaNode, optionally on another uvicorn
    ws implementation, and what the benchmark reads of it."""

    def __init__(self, name: str, env: dict[str, str], ws: str) -> None:
        command = None
        if ws != SHIPPED_WS:  # same server, another uvicorn ws implementation (a comparison)
            patch = (
                "import sys, pea.cli as c\n"
                "f = c.uvicorn_config\n"
                "def g(app, s):\n"
                "    cfg = f(app, s)\n"
                f"    cfg.ws = {ws!r}\n"
                "    return cfg\n"
                "c.uvicorn_config = g\n"
                "c.main(sys.argv[1:])\n"
            )
            command = [sys.executable, "-c", patch]
        # No metrics are scraped: --metrics-port 0 serves none.
        super().__init__(env=env, name=name, metrics_port=0, command=command)

    def redis_connections(self, redis_ports: set[int]) -> int:
        conns = psutil.Process(self.pid).net_connections(kind="tcp")
        return sum(1 for c in conns if c.raddr and c.raddr.port in redis_ports)

    def log_summary(self) -> str:
        """Bus trouble the node logged (warning level and up) so far."""
        lines = self.log_text().splitlines()
        lost = sum("bus connection lost" in x for x in lines)
        back = sum("bus reconnected" in x for x in lines)
        tail = [x[:200] for x in lines if x.strip()][-3:]
        return f"node {self.name}: {lost} bus losses, {back} reconnects; last log lines: {tail}"


@contextlib.contextmanager
def nodes(count: int, redis_url: str | None, ws: str, max_conns: int) -> Iterator[list[NodeProc]]:
    env = {
        "PEA_SECRET": SECRET,
        "PEA_LOG_LEVEL": "warning",
        "PEA_MAX_CONNECTIONS": str(max_conns),
        "PEA_RATE_PER_SECOND": "100000",
        "PEA_RATE_BURST": "100000",
        "PEA_SEND_QUEUE": "4096",
        "PEA_DRAIN_TIMEOUT": "2",
        # Every simulated peer comes from 127.0.0.1.
        "PEA_MAX_CONNECTIONS_PER_CLIENT": "0",
    }
    if redis_url:
        env["PEA_REDIS_URL"] = redis_url
    started: list[NodeProc] = []
    try:
        for i in range(count):
            node = NodeProc("AB"[i], env, ws)
            started.append(node)
            node.start()
        yield started
    finally:
        for node in started:
            node.stop()
            node.remove_log()


# --------------------------------------------------------------------------------------
# Phases and the table.
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    peers_per_node: list[int] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    connect_seconds: float = 0.0
    rss_base: list[int] = field(default_factory=list)
    rss_per_conn: list[float] = field(default_factory=list)
    idle_cpu: list[float] = field(default_factory=list)
    rate: float = 0.0
    closed: CpuPerSignal | None = None
    paced: CpuPerSignal | None = None
    paced_target: float = 0.0
    paced_rate: float = 0.0
    paced_lost: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    p999_ms: float = 0.0
    max_ms: float = 0.0
    redis_conns: list[tuple[int, ...]] = field(default_factory=list)
    rooms_per_shard: list[int] = field(default_factory=list)
    client_errors: dict[str, int] = field(default_factory=dict)
    profiles: list[str] = field(default_factory=list)
    node_logs: list[str] = field(default_factory=list)


@dataclass
class CpuUse:
    """CPU seconds over a measurement window, per party."""

    seconds: float
    nodes: list[float]
    redis: float
    clients: float
    shards: list[float]  # each redis-server that is a master (one entry on one Redis)
    machine: float  # every process of the machine, ours included


@dataclass
class CpuPerSignal:
    nodes: list[float]  # µs per signal, per node
    redis: float
    clients: float
    shards: list[float]  # µs per signal, per master
    others: float  # µs per signal burnt by processes not ours (a shared machine)
    others_pct: float  # the same, in % of one CPU over the window
    signals: int

    @property
    def node_total(self) -> float:
        return sum(self.nodes)


def _machine_cpu() -> float:
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq)


class RedisSide:
    """The redis-server processes of a setup: one Redis, or a cluster's masters and
    replicas (a replica's CPU counts in the total, not in its shard)."""

    def __init__(self, masters: list[RedisServer], replicas: Sequence[RedisServer] = ()) -> None:
        self.masters = masters
        self.replicas = list(replicas)

    @property
    def ports(self) -> set[int]:
        return {s.port for s in self.masters + self.replicas}

    def cpu(self) -> tuple[float, list[float]]:
        shards = [_cpu(s.proc.pid if s.proc else None) for s in self.masters]
        replicas = [_cpu(s.proc.pid if s.proc else None) for s in self.replicas]
        return sum(shards) + sum(replicas), shards

    def rooms_per_shard(self) -> list[int]:
        """Shard channels (rooms) each master holds, from PUBSUB SHARDCHANNELS."""
        import redis as redis_py

        counts = []
        for s in self.masters:
            with redis_py.Redis("127.0.0.1", s.port) as admin:
                if len(self.masters) == 1:  # one Redis: classic pub/sub channels
                    counts.append(len(admin.execute_command("PUBSUB", "CHANNELS", "pea:{*")))
                else:
                    counts.append(len(admin.execute_command("PUBSUB", "SHARDCHANNELS")))
        return counts


def cpu_snapshot(node_list: list[NodeProc], redis: RedisSide | None, clients: Clients) -> CpuUse:
    total, shards = redis.cpu() if redis is not None else (0.0, [])
    return CpuUse(
        time.monotonic(),
        [_cpu(n.pid) for n in node_list],
        total,
        clients.cpu(),
        shards,
        _machine_cpu(),
    )


def measured(
    clients: Clients,
    command: str,
    per_worker: list[dict[str, Any]],
    duration: float,
    node_list: list[NodeProc],
    redis: RedisSide | None,
) -> tuple[list[dict[str, Any]], CpuUse]:
    """Run a worker command that warms up 1 s then measures `duration` s; sample the CPU
    of every party over the same window."""
    for pipe, kwargs in zip(clients.pipes, per_worker, strict=True):
        pipe.send((command, kwargs))
    time.sleep(1.0)
    a = cpu_snapshot(node_list, redis, clients)
    time.sleep(duration)
    b = cpu_snapshot(node_list, redis, clients)
    results = []
    for pipe in clients.pipes:
        if not pipe.poll(duration + 30):
            raise TimeoutError(f"client workers did not finish {command!r}")
        results.append(pipe.recv())
    ours = sum(b.nodes) + b.redis + b.clients - sum(a.nodes) - a.redis - a.clients
    delta = CpuUse(
        b.seconds - a.seconds,
        [y - x for x, y in zip(a.nodes, b.nodes, strict=True)],
        b.redis - a.redis,
        b.clients - a.clients,
        [y - x for x, y in zip(a.shards, b.shards, strict=True)],
        max(0.0, b.machine - a.machine - ours),
    )
    return results, delta


def per_signal(cpu: CpuUse, signals: int) -> CpuPerSignal:
    n = max(1, signals) / 1e6
    return CpuPerSignal(
        [x / n for x in cpu.nodes],
        cpu.redis / n,
        cpu.clients / n,
        [x / n for x in cpu.shards],
        cpu.machine / n,
        100 * cpu.machine / max(1e-9, cpu.seconds),
        signals,
    )


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_setup(
    args: argparse.Namespace,
    label: str,
    node_list: list[NodeProc],
    redis: RedisSide | None,
    connections: int,
) -> Result:
    res = Result(label)
    a = node_list[0]
    b = node_list[-1]
    one_node = a is b
    # Peers per node: on one node both peers of a pair sit on it; on two nodes a pair
    # spans them (sender on A, receiver on B).
    total_pairs = connections // 2 if one_node else connections
    workers = args.workers
    clients = Clients(workers)
    redis_ports = redis.ports if redis is not None else set()
    conn_counts: list[tuple[int, ...]] = []

    def redis_count() -> tuple[int, ...]:
        return tuple(n.redis_connections(redis_ports) for n in node_list)

    try:
        time.sleep(1.0)
        if redis is not None:
            conn_counts.append(redis_count())  # before any peer
        # Baseline: 10 peers in all, then RSS.
        base_pairs = 5 if one_node else 10  # 10 peers per node
        per: list[dict[str, Any]] = [
            {"port_a": a.port, "port_b": b.port, "pairs": n, "concurrency": 8}
            for n in split(base_pairs, workers)
        ]
        clients.run("connect", 60, per)
        time.sleep(1.0)
        res.rss_base = [_rss(n.pid) for n in node_list]
        if redis is not None:
            conn_counts.append(redis_count())
        # Everyone else, idle and joined.
        print(f"[{label}] connecting {connections} peers per node ...", flush=True)
        per = [
            {"port_a": a.port, "port_b": b.port, "pairs": n, "concurrency": args.concurrency}
            for n in split(total_pairs - base_pairs, workers)
        ]
        t0 = time.monotonic()
        out = clients.run("connect", args.connect_timeout, per)
        res.connect_seconds = time.monotonic() - t0
        pairs_done = sum(o["pairs"] for o in out)
        for o in out:
            for k, v in o["failures"].items():
                res.failures[k] = res.failures.get(k, 0) + v
        res.peers_per_node = [pairs_done * 2] if one_node else [pairs_done, pairs_done]
        time.sleep(args.settle)
        cpu0 = [_cpu(n.pid) for n in node_list]
        time.sleep(args.idle)
        cpu1 = [_cpu(n.pid) for n in node_list]
        res.idle_cpu = [100 * (y - x) / args.idle for x, y in zip(cpu0, cpu1, strict=True)]
        rss = [_rss(n.pid) for n in node_list]
        extra = [max(1, p - 10) for p in res.peers_per_node]
        res.rss_per_conn = [(r - r0) / e for r, r0, e in zip(rss, res.rss_base, extra, strict=True)]
        if redis is not None:
            conn_counts.append(redis_count())
            res.rooms_per_shard = redis.rooms_per_shard()
        print(f"[{label}] {res.peers_per_node} peers in {res.connect_seconds:.0f} s", flush=True)

        # Throughput: closed loop, node CPU per relayed signal.
        pairs = split(min(args.pairs, pairs_done), workers)
        prof: list[Proc] = []
        if args.profile:
            prof = start_profilers(args, label, node_list, res)
        per = [
            {"pairs": n, "window": args.window, "warmup": 1.0, "duration": args.duration}
            for n in pairs
        ]
        got, cpu = measured(clients, "closed_loop", per, args.duration, node_list, redis)
        signals = sum(g["received"] for g in got)
        res.rate = signals / args.duration
        res.closed = per_signal(cpu, signals)
        print(f"[{label}] closed loop: {res.rate:.0f} signals/s", flush=True)

        # Latency at a paced rate (and CPU per signal when frames are not batched).
        rates = [args.rate * n / max(1, sum(pairs)) for n in pairs]
        per = [
            {"pairs": n, "rate": r, "warmup": 1.0, "duration": args.latency_duration}
            for n, r in zip(pairs, rates, strict=True)
        ]
        out, cpu = measured(clients, "paced", per, args.latency_duration, node_list, redis)
        lat = sorted(x for o in out for x in o["latencies"])
        sent = sum(o["sent"] for o in out)
        res.paced_target = args.rate
        res.paced_rate = len(lat) / args.latency_duration
        res.paced_lost = sent - len(lat)
        res.paced = per_signal(cpu, len(lat))
        for p in prof:
            p.reap(30)  # it stops by itself after --duration; killed if it does not
            p.remove_log()
        if lat:
            res.p50_ms = pct(lat, 0.50) / 1e6
            res.p99_ms = pct(lat, 0.99) / 1e6
            res.p999_ms = pct(lat, 0.999) / 1e6
            res.max_ms = lat[-1] / 1e6
        print(f"[{label}] paced: p50 {res.p50_ms:.2f} ms p99 {res.p99_ms:.2f} ms", flush=True)
        if redis is not None:
            conn_counts.append(redis_count())
        res.redis_conns = conn_counts
        res.node_logs = [n.log_summary() for n in node_list]
        for st in clients.run("stats", 30):
            for k, v in st["errors"].items():
                res.client_errors[k] = res.client_errors.get(k, 0) + v
    finally:
        with contextlib.suppress(Exception):
            clients.run("close", 60)
        clients.stop()
    return res


def pct(sorted_values: list[int], q: float) -> float:
    return float(sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))])


def start_profilers(
    args: argparse.Namespace, label: str, node_list: list[NodeProc], res: Result
) -> list[Proc]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        print("py-spy not found: pip install py-spy into .venv for --profile", file=sys.stderr)
        return []
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    procs = []
    for node in node_list:
        out = str(Path(args.profile) / f"{label.split()[0]}-{node.name}.txt")
        res.profiles.append(out)
        spy_argv = [
            spy, "record", "--pid", str(node.pid),
            "--duration", str(int(args.duration + args.latency_duration) + 4),  # both runs
            "--rate", "200", "--format", "raw",
            "--native",  # shows time in the GC and in C extensions
            "--output", out,
        ]  # fmt: skip
        proc = Proc(f"py-spy-{node.name}", spy_argv)
        proc.start()
        procs.append(proc)
    return procs


def summarize_profile(path: str, top: int) -> str:
    """Self and inclusive share of busy samples per function (py-spy raw format)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_short(fr) for fr in stack.split(";")]
            own[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples; top self / inclusive (% of busy samples)"]
    for fn, n in own.most_common(top):
        lines.append(f"  self {100 * n / total:5.1f}%  {fn}")
    interesting = ("pea/", "redis/", "websockets", "uvicorn", "starlette", "json")
    shown = [(fn, n) for fn, n in incl.most_common() if any(k in fn for k in interesting)]
    for fn, n in shown[:top]:
        lines.append(f"  incl {100 * n / total:5.1f}%  {fn}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "function (path/to/site-packages/pkg/mod.py:123)" -> "function (pkg/mod.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "signal/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def fmt_list(values: list[float], fmt: Callable[[float], str]) -> str:
    return " / ".join(fmt(v) for v in values)


def _cpu_cell(c: CpuPerSignal | None) -> str:
    if c is None or not c.signals:
        return "n/a"
    split_ = f" ({' + '.join(f'{x:.0f}' for x in c.nodes)})" if len(c.nodes) > 1 else ""
    return f"{c.node_total:.0f} µs{split_}"


def _side_cell(c: CpuPerSignal | None, redis: bool) -> str:
    if c is None or not c.signals:
        return "n/a"
    head = f"{c.redis:.0f} / " if redis else "n/a / "
    return head + f"{c.clients:.0f} / {c.others:.0f} µs"


def table(results: list[Result], args: argparse.Namespace) -> str:
    rows: list[tuple[str, str, list[str]]] = []

    def row(metric: str, goal: str, cells: list[str]) -> None:
        rows.append((metric, goal, cells))

    def each(cell: Callable[[Result], str]) -> list[str]:
        return [cell(r) for r in results]

    def listed(values: list[float], fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in values)

    row(
        "idle joined connections held per node",
        "≥ 20 000",
        each(lambda r: listed([float(p) for p in r.peers_per_node], ",.0f")),
    )
    row("time to connect and join them all", "", each(lambda r: f"{r.connect_seconds:.0f} s"))
    row(
        "node RSS per idle joined connection",
        "≤ 16 KiB",
        each(lambda r: listed([v / 1024 for v in r.rss_per_conn], ".1f") + " KiB"),
    )
    row(
        "node RSS with 10 peers",
        "",
        each(lambda r: listed([b / 2**20 for b in r.rss_base], ".0f") + " MiB"),
    )
    row(
        "node CPU, idle with all peers joined", "", each(lambda r: listed(r.idle_cpu, ".1f") + " %")
    )
    row(
        f"signals/s, closed loop ({args.pairs} pairs x {args.window} in flight)",
        "",
        each(lambda r: f"{r.rate:,.0f}"),
    )
    row(
        "node CPU per relayed signal, closed loop (A + B)",
        "≤ 50 µs",
        each(lambda r: _cpu_cell(r.closed)),
    )
    row(
        f"node CPU per relayed signal, paced {args.rate:,.0f}/s (A + B)",
        "≤ 50 µs",
        each(lambda r: _cpu_cell(r.paced)),
    )
    row(
        "CPU per signal, closed loop: redis-server / load generator / other processes",
        "",
        each(lambda r: _side_cell(r.closed, bool(r.redis_conns))),
    )
    row(
        "redis-server CPU per signal per shard (master), closed loop",
        "",
        each(
            lambda r: (
                " / ".join(f"{x:.1f}" for x in r.closed.shards) + " µs"
                if r.closed and r.closed.shards
                else "n/a"
            )
        ),
    )
    row(
        "rooms per shard (all peers joined)",
        "balanced",
        each(lambda r: " / ".join(f"{x:,}" for x in r.rooms_per_shard) or "n/a"),
    )
    row(
        "CPU of processes outside the benchmark, closed / paced window (% of one CPU)",
        "",
        each(
            lambda r: (
                f"{r.closed.others_pct:.0f} % / {r.paced.others_pct:.0f} %"
                if r.closed and r.paced
                else "n/a"
            )
        ),
    )
    row(
        f"latency p50 / p99, paced {args.rate:,.0f}/s",
        "p99 ≤ 5 ms",
        each(lambda r: f"{r.p50_ms:.2f} / {r.p99_ms:.2f} ms"),
    )
    row("latency p99.9 / max", "", each(lambda r: f"{r.p999_ms:.1f} / {r.max_ms:.1f} ms"))
    row(
        "paced: delivered/s (sent but not received 1 s after the window)",
        "",
        each(lambda r: f"{r.paced_rate:,.0f}/s ({max(0, r.paced_lost)})"),
    )
    row(
        "Redis connections per node: 0 → 10 peers → all → after load",
        "constant",
        each(
            lambda r: (
                " ; ".join(
                    "→".join(str(c[i]) for c in r.redis_conns) for i in range(len(r.redis_conns[0]))
                )
                if r.redis_conns
                else "n/a"
            )
        ),
    )
    head = f"| metric | goal | {' | '.join(r.label for r in results)} |"
    sep = "|---|---|" + "---|" * len(results)
    body = [f"| {m} | {g} | {' | '.join(c)} |" for m, g, c in rows]
    return "\n".join([head, sep, *body])


def raise_fd_limit(needed: int) -> int:
    """Raise the open-files limit (inherited by the nodes and workers); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, needed)
    if hard != resource.RLIM_INFINITY and want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root only
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def cap_connections(wanted: int, fd_limit: int, notes: list[str]) -> int:
    """A node needs one descriptor per connection plus a few dozen of its own."""
    fit = fd_limit - 64
    if wanted <= fit:
        return wanted
    notes.append(
        f"{wanted} connections per node asked, {fit} fit: the open-files hard limit is "
        f"{fd_limit} and cannot be raised here (needs CAP_SYS_RESOURCE or a higher "
        "`ulimit -Hn`/LimitNOFILE); this limit is the environment's, not pea's"
    )
    return fit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--connections",
        type=int,
        default=20000,
        help="idle joined peers on the memory-bus node (default 20000)",
    )
    p.add_argument(
        "--redis-connections",
        type=int,
        default=5000,
        help="idle joined peers per node on Redis (default 5000: joins on Redis get slower "
        "with every peer, see docs/benchmarks.md; 20000 takes about 10 minutes)",
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="seconds of closed-loop throughput measurement"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=5000.0,
        help="paced signals/s for the latency measurement (default 5000)",
    )
    p.add_argument(
        "--latency-duration", type=float, default=10.0, help="seconds of paced latency measurement"
    )
    p.add_argument(
        "--pairs",
        type=int,
        default=500,
        help="sender/receiver pairs used for throughput and latency",
    )
    p.add_argument("--window", type=int, default=8, help="signals in flight per pair (closed loop)")
    p.add_argument("--workers", type=int, default=4, help="client processes")
    p.add_argument("--concurrency", type=int, default=64, help="joins in flight per worker")
    p.add_argument("--idle", type=float, default=6.0, help="seconds of idle CPU measurement")
    p.add_argument("--settle", type=float, default=3.0, help="seconds to settle after joining")
    p.add_argument("--connect-timeout", type=float, default=600.0)
    p.add_argument(
        "--only",
        help="comma-separated setups to run out of memory, redis, cluster (default: all)",
    )
    p.add_argument(
        "--ws",
        default=SHIPPED_WS,
        choices=("websockets-sansio", "websockets", "wsproto"),
        help="uvicorn ws implementation of the nodes (comparison only)",
    )
    p.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy the nodes during the closed loop and the paced run (perturbs the figures)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the benchmark and everything it starts at this niceness, e.g. -10 (root) "
        "so other work on a shared machine disturbs the figures less",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small run, under a minute: 2000 + 1000 connections, 3 s phases",
    )
    args = p.parse_args(argv)
    args.setups = set((args.only or "memory,redis,cluster").split(","))
    if not args.setups <= {"memory", "redis", "cluster"}:
        p.error("--only takes memory, redis and/or cluster")
    if args.quick:
        args.connections = min(args.connections, 2000)
        args.redis_connections = min(args.redis_connections, 1000)
        args.duration = args.latency_duration = 3.0
        args.idle, args.settle = 2.0, 1.0
        args.pairs = min(args.pairs, 200)
    return args


def other_processes(top: int = 8) -> list[str]:
    """The machine is shared: who else burns CPU, so the figures can be judged."""
    ours = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
    procs = [p for p in psutil.process_iter(["pid", "name"]) if p.pid not in ours]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(1.0)
    usage = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            usage.append((p.cpu_percent(None), p.pid, p.info["name"]))
    usage.sort(reverse=True)
    return [f"{pct_:5.0f} %  {pid} {name}" for pct_, pid, name in usage[:top] if pct_ > 0]


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwind through every `finally`: stop what we started


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
    command = " ".join([".venv/bin/python -m bench.signal_load", *sys.argv[1:]])
    fd_limit = raise_fd_limit(max(args.connections, args.redis_connections) * 2 + 4096)
    notes: list[str] = []
    mem_conns = cap_connections(args.connections, fd_limit, notes)
    redis_conns = cap_connections(args.redis_connections, fd_limit, notes)
    results: list[Result] = []
    try:
        if "memory" in args.setups:
            with nodes(1, None, args.ws, mem_conns + 1000) as ns:
                results.append(run_setup(args, "memory bus, 1 node", ns, None, mem_conns))
        if "redis" in args.setups:
            with (
                redis_server() as redis,
                nodes(2, redis.url, args.ws, redis_conns + 1000) as ns,
            ):
                side = RedisSide([redis])
                results.append(run_setup(args, "Redis, 2 nodes (A / B)", ns, side, redis_conns))
        if "cluster" in args.setups:
            with (
                redis_cluster() as cluster,
                nodes(2, cluster.url, args.ws, redis_conns + 1000) as ns,
            ):
                masters = set(cluster.master_ports())
                side = RedisSide(
                    [s for s in cluster.servers if s.port in masters],
                    [s for s in cluster.servers if s.port not in masters],
                )
                label = "Redis Cluster 3 shards, 2 nodes"
                results.append(run_setup(args, label, ns, side, redis_conns))
    except KeyboardInterrupt:
        print("interrupted; everything started has been stopped", file=sys.stderr)
        raise SystemExit(130) from None
    cpu = psutil.cpu_count() or 0
    print()
    print(f"command: {command}")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"load average at the end: {load}; niceness {os.getpriority(os.PRIO_PROCESS, 0)}; "
        f"machine: {cpu} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"server ws: {args.ws}; clients: {args.workers} processes on the same CPUs"
    )
    for note in notes:
        print(f"note: {note}")
    print("busiest processes outside the benchmark right now (% of one CPU over 1 s):")
    for line in other_processes():
        print(f"  {line}")
    print()
    print(table(results, args))
    for r in results:
        if r.failures:
            print(f"\n{r.label}: connect failures {r.failures}")
        if r.client_errors:
            print(f"{r.label}: error frames received {r.client_errors}")
        for line in r.node_logs:
            print(f"{r.label}: {line}")
        for path in r.profiles:
            print()
            print(summarize_profile(path, 15))


if __name__ == "__main__":
    main()
