"""`make cluster`: the compose topology without Docker, on loopback ports.

One redis-server (with a password, like production), N `pea serve` nodes and
Debian's nginx as the round-robin load balancer, all behind one URL. nginx runs
in the foreground with a config derived from deploy/nginx/nginx.conf (the one
compose uses), with its pid, logs and temp files in a private temp folder.

As a command (Ctrl-C stops everything):

    python -m deploy.cluster.run --port 8080 --nodes 3

From Python (tests): every wait is bounded and everything is stopped on exit.

    with cluster(nodes=3) as c:
        c.url          # http://127.0.0.1:PORT (nginx)
        c.ws_url       # ws://127.0.0.1:PORT/ws
        c.nodes[0].terminate(); ...; c.nodes[0].start()
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Processes, ports, readiness and the Redis ping come from the one harness that
# tests and benchmarks use too (`make cluster` runs from a checkout, like they do).
from tests.support.procs import (
    LOOPBACK,
    ROOT,
    PeaNode,
    Proc,
    RedisServer,
    find_exe,
    free_port,
    http_status,
    wait_for,
)

NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"


@dataclass
class Cluster:
    port: int
    workdir: Path
    redis: RedisServer
    nodes: list[PeaNode]
    nginx: Proc
    secret: str
    drain_timeout: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws"

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def logs(self) -> str:
        """All logs (for a failing test's report)."""
        parts = [f"--- {p.name} ---\n{p.log_text()[-6000:]}" for p in self._procs()]
        with contextlib.suppress(OSError):
            parts.append("--- nginx error.log ---\n" + (self.workdir / "error.log").read_text())
        return "\n".join(parts)

    def _procs(self) -> list[Proc]:
        return [self.redis, *self.nodes, self.nginx]

    def stop(self) -> None:
        # nginx first (no new connections), then the nodes in parallel, then Redis.
        self.nginx.stop(10, signal.SIGQUIT)
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.reap(self.drain_timeout + 10)
        self.redis.stop(10)


def nginx_config(template: str, listen_port: int, upstreams: list[int], workdir: Path) -> str:
    """deploy/nginx/nginx.conf with loopback upstreams and private paths."""
    out = template
    out, n = re.subn(r"^(\s*)pid .*;$", rf"\1pid {workdir}/nginx.pid;", out, flags=re.M)
    assert n == 1, "pid directive not found in nginx.conf"
    out, n = re.subn(
        r"^(\s*)error_log .*;$", rf"\1error_log {workdir}/error.log warn;", out, flags=re.M
    )
    assert n == 1, "error_log directive not found in nginx.conf"
    out, n = re.subn(r"(_temp_path )/tmp/", rf"\g<1>{workdir}/", out)
    assert n == 5, "temp paths not found in nginx.conf"
    out, n = re.subn(
        r"^(\s*)listen 8080;$", rf"\1listen {LOOPBACK}:{listen_port};", out, flags=re.M
    )
    assert n == 1, "listen 8080 not found in nginx.conf"
    servers = re.findall(r"^\s*server pea\d+:8080 (.*);$", out, flags=re.M)
    assert servers, "upstream servers not found in nginx.conf"
    params = servers[0]
    lines = "\n".join(f"        server {LOOPBACK}:{p} {params};" for p in upstreams)
    out = re.sub(r"(?:^\s*server pea\d+:8080 .*;\n)+", lines + "\n", out, flags=re.M)
    # Foreground, one worker process: enough for loopback, and easy to stop.
    out = out.replace("worker_processes auto;", "worker_processes 1;\ndaemon off;")
    return out


@contextlib.contextmanager
def cluster(
    nodes: int = 3,
    port: int | None = None,
    console: bool = False,
    drain_timeout: float = 10.0,
    resume_grace: float = 15.0,
    log_level: str = "info",
    extra_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """Start redis-server, `nodes` pea nodes and nginx; stop them all on exit."""
    with tempfile.TemporaryDirectory(prefix="pea-cluster-") as tmp:
        workdir = Path(tmp)

        def log(name: str) -> Path:
            return workdir / f"{name}.log"

        redis = RedisServer(tmp, password=secrets.token_hex(16), log=log("redis"), console=console)
        node_env = {
            "PEA_REDIS_URL": redis.url,
            "PEA_SECRET": os.environ.get("PEA_SECRET") or secrets.token_urlsafe(32),
            "PEA_DRAIN_TIMEOUT": str(drain_timeout),
            "PEA_RESUME_GRACE": str(resume_grace),
            "PEA_LOG_LEVEL": log_level,
            # nginx reaches the nodes from loopback: its X-Forwarded-For names the client.
            "PEA_TRUSTED_PROXIES": LOOPBACK,
            **(extra_env or {}),
        }
        pea_nodes = [
            PeaNode(env=node_env, name=f"pea{i + 1}", log=log(f"pea{i + 1}"), console=console)
            for i in range(nodes)
        ]
        listen = port or free_port()
        conf = workdir / "nginx.conf"
        upstreams = [n.port for n in pea_nodes]
        conf.write_text(nginx_config(NGINX_CONF.read_text(), listen, upstreams, workdir))
        nginx = Proc(
            "nginx",
            [find_exe("nginx", "/usr/sbin/nginx"), "-p", tmp, "-e", str(workdir / "error.log"),
             "-c", str(conf)],
            log=log("nginx"),
            console=console,
        )  # fmt: skip
        c = Cluster(listen, workdir, redis, pea_nodes, nginx, node_env["PEA_SECRET"], drain_timeout)
        try:
            redis.start()
            for node in pea_nodes:
                node.start(wait_ready=False)
            for node in pea_nodes:
                node.wait_ready(30)
            nginx.start()

            def through_nginx() -> bool:
                if not nginx.running:
                    raise RuntimeError("nginx exited:\n" + c.logs()[-3000:])
                return http_status(c.url + "/readyz") == 200

            wait_for(through_nginx, 10, f"nginx on port {listen}")
            yield c
        finally:
            c.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make cluster",
        description="redis-server + N pea nodes + nginx on loopback, behind one URL. "
        "Ctrl-C stops everything.",
    )
    parser.add_argument("--port", type=int, default=8080, help="nginx port (default 8080)")
    parser.add_argument("--nodes", type=int, default=3, help="pea nodes (default 3)")
    parser.add_argument("--drain-timeout", type=float, default=10.0, help="PEA_DRAIN_TIMEOUT")
    parser.add_argument("--log-level", default="info", help="PEA_LOG_LEVEL")
    args = parser.parse_args(argv)

    stop = threading.Event()
    roll = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        (roll if signum == signal.SIGHUP else stop).set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        with cluster(
            nodes=args.nodes,
            port=args.port,
            console=True,
            drain_timeout=args.drain_timeout,
            log_level=args.log_level,
        ) as c:
            nodes = "\n".join(
                f"    {n.name}: {n.url}, metrics {n.metrics_url} (pid {n.pid})" for n in c.nodes
            )
            print(
                f"\npea cluster ready: open {c.url}/\n"
                f"  nodes (a node that exits is started again):\n{nodes}\n"
                f"  rolling restart of every node: kill -HUP {os.getpid()}\n"
                f"  Ctrl-C stops everything\n",
                flush=True,
            )
            while not stop.wait(0.5):
                dead = [p.name for p in [c.redis, c.nginx] if not p.running]
                if dead:
                    print(f"{', '.join(dead)} exited; stopping", file=sys.stderr)
                    return 1
                for node in c.nodes:
                    if not node.running:
                        print(f"[cluster] {node.name} exited; starting it again", flush=True)
                        node.start(wait_ready=False)
                if roll.is_set():
                    roll.clear()
                    for node in c.nodes:
                        if stop.is_set():
                            break
                        print(f"[cluster] rolling restart: {node.name}", flush=True)
                        node.restart(args.drain_timeout)
                    print("[cluster] rolling restart done", flush=True)
            print("\nstopping the cluster…", flush=True)
    except (TimeoutError, RuntimeError, FileNotFoundError) as exc:
        print(f"make cluster: {exc}", file=sys.stderr)
        return 1
    print("cluster stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
