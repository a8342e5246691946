"""The one process harness: tests, `make cluster` (deploy/cluster/run.py) and bench/.

Owns everything about child processes on loopback: free ports, starting a
process in a session of its own (so Ctrl-C reaches only us and we stop it in
order), stopping it by its PID with bounded waits (SIGTERM, then SIGKILL),
readiness waits, the redis-server and `pea serve` processes and the Redis ping.
Every wait here is bounded, and every process started in a `with` block is
stopped when the block ends, whatever happened inside it.

It lives under tests/ because tests are its first user; `make cluster` and the
benchmarks are dev tools run from a checkout (`python -m ...` from the repo
root), never shipped, so they import it from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
DEFAULT_SECRET = "test-secret-test-secret-test-secret"


# -- ports, executables, waits ---------------------------------------------------------


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def find_exe(name: str, *fallbacks: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"{name} not found (make system-deps installs it)")


def pea_exe() -> str:
    """The `pea` script of the running interpreter's venv."""
    beside = Path(sys.executable).with_name("pea")
    if beside.exists():
        return str(beside)
    return find_exe("pea", str(ROOT / ".venv" / "bin" / "pea"))


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # an error response holds its socket until closed
        return int(exc.code)
    except (OSError, ValueError):
        return None


def metric(url: str, name: str) -> float:
    """One unlabelled sample from a Prometheus text page (a node's metrics_url)."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise LookupError(f"{name} not in {url}")


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll until predicate() is true; return the seconds it took.

    OSError from the predicate (connection refused, a socket timeout) counts as
    "not yet"; any other exception (a process that exited) ends the wait at once.
    """
    start = time.monotonic()
    while True:
        with contextlib.suppress(OSError):
            if predicate():
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


async def wait_for_async(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1
) -> float:
    """wait_for for async code: the (blocking) predicate runs in a thread."""

    def check() -> bool:
        with contextlib.suppress(OSError):
            return bool(predicate())
        return False

    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await asyncio.to_thread(check):
        if loop.time() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)
    return loop.time() - start


def redis_ping(port: int, password: str | None = None, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on loopback (after AUTH, with a password)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.sendall((f"AUTH {password}\r\n" if password else "").encode() + b"PING\r\n")
            data = b""
            deadline = time.monotonic() + 2 * timeout
            while b"PONG" not in data and time.monotonic() < deadline:
                chunk = s.recv(64)
                if not chunk:
                    break
                data += chunk
            return b"+PONG" in data
    except OSError:
        return False


def inherited_env() -> dict[str, str]:
    """Our environment minus PEA_* settings: a child gets only the settings we give it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PEA_")}


# -- one child process -----------------------------------------------------------------


def _load_libc() -> ctypes.CDLL | None:
    # Loaded here, not in the forked child: dlopen() after fork() can deadlock.
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc() if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _preexec(die_with_parent: bool) -> Callable[[], None] | None:
    """SIGTERM to the child when its parent dies (Linux), so nothing outlives a crash.

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so it is only set
    for children spawned by the main thread.
    """
    libc = _LIBC
    if not die_with_parent or libc is None:
        return None

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, SIGTERM)

    return preexec


class _Pump(threading.Thread):
    """Copies a child's output line by line to the console, with a prefix."""

    lock = threading.Lock()

    def __init__(self, stream: IO[bytes], prefix: str) -> None:
        super().__init__(daemon=True)
        self.stream, self.prefix = stream, prefix

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self.lock:
                sys.stdout.write(f"{self.prefix}{line}\n")
                sys.stdout.flush()
        self.stream.close()


class Proc:
    """One child process, started in a session of its own and stopped by its PID.

    Output goes to `log` (a file, appended to across restarts; a temp file when
    not given) or, with console=True, to our stdout prefixed with the name.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        console: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env or {})
        self.console = console
        self.log_path = None if console else log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is running"
        if not self.console and self.log_path is None:
            fd, path = tempfile.mkstemp(prefix=f"pea-{self.name}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(path)
        with contextlib.ExitStack() as stack:
            out: IO[bytes] | int = subprocess.PIPE
            if not self.console:
                assert self.log_path is not None
                out = stack.enter_context(self.log_path.open("ab"))
            self.proc = subprocess.Popen(
                self.argv,
                env={**inherited_env(), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the child
                preexec_fn=_preexec(threading.current_thread() is threading.main_thread()),
            )
        if self.console:
            assert self.proc.stdout is not None
            _Pump(self.proc.stdout, f"[{self.name}] ").start()

    def exited(self) -> None:
        """Raise if the process has exited (a readiness check that can never succeed)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}\n{self.log_text()[-4000:]}"
            )

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def terminate(self) -> None:
        self.signal(SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit code; subprocess.TimeoutExpired if it is still running after timeout."""
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.wait(timeout)

    def stop(self, timeout: float = 20, sig: int = SIGTERM) -> int | None:
        """Send sig, wait up to timeout for the exit, then SIGKILL. The exit code."""
        self.signal(sig)
        return self.reap(timeout)

    def reap(self, timeout: float) -> int | None:
        """Wait up to timeout for an exit already asked for, then SIGKILL. The exit code."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: no goodbye, no drain."""
        self.stop(5, SIGKILL)

    def log_text(self) -> str:
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def remove_log(self) -> None:
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


# -- redis-server and pea nodes --------------------------------------------------------


class RedisServer(Proc):
    """A private redis-server on loopback: no persistence, optionally a password."""

    def __init__(
        self,
        workdir: str | Path,
        port: int | None = None,
        password: str | None = None,
        log: Path | None = None,
        console: bool = False,
        extra: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.password = password
        argv = [
            find_exe("redis-server", "/usr/bin/redis-server"),
            "--port", str(self.port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
            "--dir", str(workdir), "--protected-mode", "no", "--loglevel", "warning",
        ]  # fmt: skip
        if password:
            argv += ["--requirepass", password, "--masterauth", password]
        argv += extra
        super().__init__("redis", argv, log=log, console=console)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{LOOPBACK}:{self.port}/0"

    def ping(self) -> bool:
        self.exited()
        return redis_ping(self.port, self.password)

    def start(self, timeout: float = 10) -> None:
        super().start()
        wait_for(self.ping, timeout, f"redis-server on port {self.port}")

    def restart(self, down_for: float = 0.0) -> None:
        self.stop(5)
        time.sleep(down_for)
        self.start()


@contextlib.contextmanager
def redis_server(port: int | None = None, password: str | None = None) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="pea-redis-") as workdir:
        server = RedisServer(workdir, port, password)
        try:
            server.start()
            yield server
        finally:
            server.stop(5)
            server.remove_log()


class RedisCluster:
    """A Redis Cluster on loopback: `masters` masters with `replicas` replicas each,
    made by `redis-cli --cluster create`, in a temp dir; a short node timeout so a
    killed master's replica takes over within seconds."""

    def __init__(
        self, workdir: Path, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1500
    ) -> None:
        self.workdir = workdir
        self.masters = masters
        self.replicas = replicas
        self.servers: list[RedisServer] = []
        for _ in range(masters * (1 + replicas)):
            port = free_port()
            home = workdir / str(port)
            home.mkdir()
            extra = [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                # Its own bus port: the default (port + 10000) may be taken or > 65535.
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", str(node_timeout_ms),
                # A replica takes over however stale it is: tests kill masters on purpose.
                "--cluster-replica-validity-factor", "0",
                "--cluster-allow-pubsubshard-when-down", "yes",
            ]  # fmt: skip
            self.servers.append(RedisServer(home, port, extra=extra))

    @property
    def seeds(self) -> str:
        return ",".join(f"{LOOPBACK}:{s.port}" for s in self.servers[: self.masters])

    @property
    def url(self) -> str:
        return f"redis+cluster://{self.seeds}"

    def cli(self, port: int, *args: str, timeout: float = 10) -> str:
        out = subprocess.run(
            [find_exe("redis-cli", "/usr/bin/redis-cli"), "-h", LOOPBACK, "-p", str(port), *args],
            capture_output=True, text=True, timeout=timeout, check=True,
        )  # fmt: skip
        return out.stdout

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def nodes(self, port: int | None = None) -> list[dict[str, str]]:
        """CLUSTER NODES as seen by one server: id, addr (host:port), flags, master, slots."""
        port = port or next(s.port for s in self.servers if s.running)
        rows = []
        for line in self.cli(port, "cluster", "nodes").splitlines():
            f = line.split()
            if len(f) >= 8:
                rows.append({
                    "id": f[0], "addr": f[1].split("@")[0], "flags": f[2], "master": f[3],
                    "slots": " ".join(f[8:]),
                })  # fmt: skip
        return rows

    def master_ports(self) -> list[int]:
        return sorted(
            int(r["addr"].rsplit(":", 1)[1])
            for r in self.nodes()
            if "master" in r["flags"] and "fail" not in r["flags"] and r["slots"]
        )

    def healthy(self) -> bool:
        """Every server answers, every slot is served, and all agree on `cluster_state:ok`."""
        for s in self.servers:
            s.exited()
            if "cluster_state:ok" not in self.cli(s.port, "cluster", "info"):
                return False
        return True

    def start(self, timeout: float = 60) -> None:
        for s in self.servers:
            s.start()
        if not (self.workdir / "created").exists():
            self.cli(
                self.servers[0].port, "--cluster", "create",
                *(f"{LOOPBACK}:{s.port}" for s in self.servers),
                "--cluster-replicas", str(self.replicas), "--cluster-yes", timeout=60,
            )  # fmt: skip
            (self.workdir / "created").touch()
        wait_for(self.healthy, timeout, "the Redis Cluster to be healthy", interval=0.2)

    def stop(self) -> None:
        for s in self.servers:
            s.stop(5)
            s.remove_log()

    def restart(self, timeout: float = 60) -> None:
        """Every server stopped, then started again: same ports and node ids
        (nodes.conf), no data (no persistence)."""
        for s in self.servers:
            s.stop(5)
        for s in self.servers:
            s.start()
        wait_for(self.healthy, timeout, "the restarted Redis Cluster to be healthy", interval=0.2)


@contextlib.contextmanager
def redis_cluster(masters: int = 3, replicas: int = 1) -> Iterator[RedisCluster]:
    with tempfile.TemporaryDirectory(prefix="pea-rcluster-") as workdir:
        cluster = RedisCluster(Path(workdir), masters, replicas)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()


class PeaNode(Proc):
    """A `pea serve` process on loopback; /metrics on a port of its own.

    `env` holds its PEA_* settings; `command` replaces the `pea` script (the
    benchmark runs the same server with a patched entry point).
    """

    def __init__(
        self,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        *,
        name: str = "pea",
        metrics_port: int | None = None,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        log: Path | None = None,
        console: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.metrics_port = free_port() if metrics_port is None else metrics_port
        argv = [
            *(command or [pea_exe()]),
            "serve", "--host", LOOPBACK, "--port", str(self.port),
            "--metrics-port", str(self.metrics_port), *args,
        ]  # fmt: skip
        super().__init__(name, argv, env, log, console)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}/ws"

    @property
    def metrics_url(self) -> str:
        """Prometheus metrics: their own port, never the public one."""
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    def metric(self, name: str) -> float:
        return metric(self.metrics_url, name)

    def ready(self) -> bool:
        """/readyz answers 200 (raises when the process has exited)."""
        self.exited()
        return http_status(self.url + "/readyz") == 200

    def wait_ready(self, timeout: float = 30) -> None:
        wait_for(self.ready, timeout, f"{self.name} on port {self.port} to be ready")

    def start(self, wait_ready: bool = True) -> None:
        super().start()
        if wait_ready:
            self.wait_ready()

    def restart(self, drain_timeout: float, ready_timeout: float = 30) -> None:
        """SIGTERM (the node drains its peers), wait for the exit, start again, wait ready."""
        self.stop(drain_timeout + 10)
        self.start(wait_ready=False)
        self.wait_ready(ready_timeout)


def node_env(
    redis_url: str | None = None, secret: str = DEFAULT_SECRET, **settings: str
) -> dict[str, str]:
    """PEA_* variables; settings are their names without the prefix, lowercase."""
    env = {"PEA_SECRET": secret, "PEA_LOG_LEVEL": "info"}
    if redis_url:
        env["PEA_REDIS_URL"] = redis_url
    env.update({"PEA_" + k.upper(): v for k, v in settings.items()})
    return env


@contextlib.contextmanager
def pea_node(
    redis_url: str | None = None, secret: str = DEFAULT_SECRET, **settings: str
) -> Iterator[PeaNode]:
    """A `pea serve` process, ready; settings are PEA_* names without the prefix, lowercase.

    Every parameter is a str, so a dict of settings can be passed as **settings.
    """
    node = PeaNode(env=node_env(redis_url, secret, **settings))
    try:
        node.start()
        yield node
    finally:
        node.stop()
        node.remove_log()
