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
        c.nodes[0].terminate(); ...; c.nodes[0].spawn()
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _find(exe: str, *fallbacks: str) -> str:
    found = shutil.which(exe)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"{exe} not found (make system-deps installs it)")


def _pea_exe() -> str:
    beside = Path(sys.executable).with_name("pea")
    if beside.exists():
        return str(beside)
    return _find("pea", str(ROOT / ".venv" / "bin" / "pea"))


def _own_session(die_with_parent: bool) -> Callable[[], None]:
    """In the child: a session of its own, and SIGTERM when the parent dies (Linux).

    The own session keeps Ctrl-C away from the children, so the parent stops
    them in order. PR_SET_PDEATHSIG fires when the *thread* that forked exits,
    so it is only set for children spawned by the main thread.
    """

    def preexec() -> None:
        os.setsid()
        if die_with_parent:
            with contextlib.suppress(Exception):
                libc = ctypes.CDLL("libc.so.6", use_errno=True)
                libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class _Pump(threading.Thread):
    """Copies a child's output line by line to a sink, with a prefix."""

    def __init__(self, stream: IO[bytes], sink: IO[str], prefix: str, lock: threading.Lock):
        super().__init__(daemon=True)
        self.stream, self.sink, self.prefix, self.lock = stream, sink, prefix, lock

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                self.sink.write(f"{self.prefix}{line}\n")
                self.sink.flush()
        self.stream.close()


@dataclass
class Proc:
    """One child process whose output goes to a log file or the console."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path | None  # None: the console, prefixed with the name
    proc: subprocess.Popen[bytes] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sink: IO[str] | None = None

    def spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_own_session(threading.current_thread() is threading.main_thread()),
        )
        if self.log is not None:
            self._sink = self.log.open("a")
        assert self.proc.stdout is not None
        _Pump(self.proc.stdout, self._sink or sys.stdout, f"[{self.name}] ", self._lock).start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """Wait for exit; SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def stop(self, timeout: float, sig: int = signal.SIGTERM) -> int | None:
        self.terminate(sig)
        return self.wait(timeout)

    def log_text(self) -> str:
        if self.log is None:
            return ""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")
        return ""


@dataclass
class Node(Proc):
    port: int = 0
    metrics_port: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics: their own port, never behind nginx."""
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}\n{self.log_text()[-4000:]}"
            )
        return http_status(self.url + "/readyz") == 200

    def wait_ready(self, timeout: float = 30) -> None:
        wait_until(self.ready, timeout, f"{self.name} on port {self.port} to be ready")

    def restart(self, drain_timeout: float, ready_timeout: float = 30) -> None:
        """SIGTERM (the node drains its peers), wait for exit, start again, wait ready."""
        self.stop(drain_timeout + 10)
        self.spawn()
        self.wait_ready(ready_timeout)


@dataclass
class Cluster:
    port: int
    workdir: Path
    redis: Proc
    nodes: list[Node]
    nginx: Proc
    redis_url: str
    secret: str
    drain_timeout: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws"

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
            node.wait(self.drain_timeout + 10)
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
        redis_port = free_port()
        password = secrets.token_hex(16)
        redis_url = f"redis://:{password}@{LOOPBACK}:{redis_port}/0"
        secret = os.environ.get("PEA_SECRET") or secrets.token_urlsafe(32)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PEA_")}

        def log(name: str) -> Path | None:
            return None if console else workdir / f"{name}.log"

        redis = Proc(
            "redis",
            [_find("redis-server", "/usr/bin/redis-server"), "--port", str(redis_port),
             "--bind", LOOPBACK, "--requirepass", password, "--save", "", "--appendonly",
             "no", "--dir", tmp, "--loglevel", "warning"],
            base_env,
            log("redis"),
        )  # fmt: skip
        node_env = {
            **base_env,
            "PEA_REDIS_URL": redis_url,
            "PEA_SECRET": secret,
            "PEA_DRAIN_TIMEOUT": str(drain_timeout),
            "PEA_RESUME_GRACE": str(resume_grace),
            "PEA_LOG_LEVEL": log_level,
            # nginx reaches the nodes from loopback: its X-Forwarded-For names the client.
            "PEA_TRUSTED_PROXIES": LOOPBACK,
            **(extra_env or {}),
        }
        node_ports = [free_port() for _ in range(nodes)]
        metrics_ports = [free_port() for _ in range(nodes)]
        pea_nodes = [
            Node(
                f"pea{i + 1}",
                [_pea_exe(), "serve", "--host", LOOPBACK, "--port", str(p),
                 "--metrics-port", str(m)],
                node_env,
                log(f"pea{i + 1}"),
                port=p,
                metrics_port=m,
            )
            for i, (p, m) in enumerate(zip(node_ports, metrics_ports, strict=True))
        ]  # fmt: skip
        listen = port or free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_config(NGINX_CONF.read_text(), listen, node_ports, workdir))
        nginx = Proc(
            "nginx",
            [_find("nginx", "/usr/sbin/nginx"), "-p", tmp, "-e", str(workdir / "error.log"),
             "-c", str(conf)],
            base_env,
            log("nginx"),
        )  # fmt: skip
        c = Cluster(listen, workdir, redis, pea_nodes, nginx, redis_url, secret, drain_timeout)
        try:
            redis.spawn()
            wait_until(lambda: _redis_up(redis_port, password), 10, "redis-server")
            for node in pea_nodes:
                node.spawn()
            for node in pea_nodes:
                node.wait_ready(30)
            nginx.spawn()

            def through_nginx() -> bool:
                if not nginx.running:
                    raise RuntimeError("nginx exited:\n" + c.logs()[-3000:])
                return http_status(c.url + "/readyz") == 200

            wait_until(through_nginx, 10, f"nginx on port {listen}")
            yield c
        finally:
            c.stop()


def _redis_up(port: int, password: str) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as s:
            s.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            data = b""
            deadline = time.monotonic() + 1
            while b"PONG" not in data and time.monotonic() < deadline:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return b"+PONG" in data
    except OSError:
        return False


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
                f"    {n.name}: {n.url}, metrics {n.metrics_url} "
                f"(pid {n.proc.pid if n.proc else '?'})"
                for n in c.nodes
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
                        node.spawn()
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
