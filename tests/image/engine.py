"""A Docker engine of the tests' own: Debian's dockerd with its own data root.

No bridge, no iptables, no NAT: containers use the host's loopback (`--network
host`), or, for compose, run in a network namespace the test makes, where the
engine's own networks exist and nothing else does. Started here, stopped by its
PID at the end (or when pytest dies: the parent-death signal of tests/support/procs).

The data root lives in a cache folder that outlives the run, so the base images
made from Debian packages (bases.py) stay for the next run on the same machine.
A system engine (/var/run/docker.sock) is never used: its images, networks and
firewall rules belong to someone else, and the base images made here carry the
public names the Dockerfile uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.procs import Proc

# docker.io's own CLI (20.10, like the engine): it speaks BuildKit itself, without
# the buildx plugin that newer CLIs need.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
CACHE = Path(os.environ.get("PEA_IMAGE_CACHE") or Path.home() / ".cache" / "pea-image")
LOCK_WAIT = 900.0  # another run of these tests on this machine holds the engine


def missing_tools() -> str | None:
    """Why this machine cannot run our engine, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to run a Docker engine"
    for exe in (DOCKER, DOCKERD, shutil.which("mmdebstrap") or "/usr/bin/mmdebstrap"):
        if not os.access(exe, os.X_OK):
            return f"{exe} is missing (make image-deps installs docker.io and mmdebstrap)"
    if not (CACHE / "config" / "cli-plugins" / "docker-compose").is_file():
        return "the compose v2 plugin is missing (make image-deps fetches it)"
    return None


class DockerError(AssertionError):
    pass


class Engine:
    """dockerd on a socket of ours; `docker(...)` runs the CLI against it."""

    def __init__(self, root: Path = CACHE) -> None:
        self.root = root
        self.data = root / "data"
        # exec-root holds containerd's socket: its path must stay short.
        self.exec_root = root / "run"
        self.sock = root / "docker.sock"
        self.pidfile = root / "docker.pid"
        self.config = root / "config"
        self.log = root / "dockerd.log"
        self.netns: str | None = None
        self.proc: Proc | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return {
            "DOCKER_HOST": f"unix://{self.sock}",
            "DOCKER_CONFIG": str(self.config),
            "DOCKER_BUILDKIT": "1",
        }

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def start(self, netns: str | None = None, timeout: float = 60) -> None:
        """Start dockerd, inside network namespace `netns` if given (made by the caller)."""
        assert self.proc is None or not self.proc.running, "engine already running"
        self._stop_stale()
        for d in (self.data, self.exec_root, self.config):
            d.mkdir(parents=True, exist_ok=True)
        argv = [
            DOCKERD,
            "--data-root", str(self.data),
            "--exec-root", str(self.exec_root),
            "--host", f"unix://{self.sock}",
            "--pidfile", str(self.pidfile),
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--storage-driver=overlay2",
            "--log-level=warn",
        ]  # fmt: skip
        if netns:
            # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts.
            argv = ["nsenter", f"--net=/run/netns/{netns}", *argv]
        self.log.write_text("")
        self.proc = Proc("dockerd", argv, log=self.log)
        self.netns = netns
        self.proc.start()
        deadline = time.monotonic() + timeout
        while True:
            self.proc.exited()
            if self.docker("version", check=False, timeout=10).returncode == 0:
                return
            if time.monotonic() > deadline:
                raise DockerError(f"dockerd not up in {timeout} s\n{self.log_tail()}")
            time.sleep(0.2)

    def use(self, netns: str | None) -> None:
        """Running, in the host's network namespace (None) or in `netns`."""
        if self.proc is not None and self.proc.running and self.netns == netns:
            return
        self.stop()
        self.start(netns)

    def stop(self, timeout: float = 30) -> None:
        """Remove every container, then stop dockerd (and its containerd) by PID."""
        if self.proc is None:
            return
        if self.proc.running:
            with contextlib.suppress(Exception):
                ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False, timeout=60)
        containerd = self._containerd_pid()
        self.proc.stop(timeout)
        if containerd is not None:
            # dockerd stops the containerd it started; a killed dockerd leaves it behind.
            _kill_pid(containerd, b"containerd", timeout=10)
        self.proc = None
        self.netns = None

    def _containerd_pid(self) -> int | None:
        path = self.exec_root / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        return None

    def _stop_stale(self) -> None:
        """A run killed hard may have left its dockerd (ours: same data root) running."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            _kill_pid(pid, str(self.data).encode(), timeout=30)
        pid2 = self._containerd_pid()
        if pid2 is not None:
            _kill_pid(pid2, str(self.exec_root).encode(), timeout=10)

    def log_tail(self, n: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-n:]
        return ""

    # -- the CLI -----------------------------------------------------------------------

    def docker(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [DOCKER, *args]
        out = subprocess.run(
            argv,
            env={**self.full_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            cwd=cwd,
            check=False,
        )
        if check and out.returncode != 0:
            what = f"{' '.join(argv)} exited {out.returncode}"
            raise DockerError(f"{what}\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
        return out

    def inspect(self, kind: str, name: str) -> dict[str, Any]:
        data = json.loads(self.docker(kind, "inspect", name).stdout)
        assert isinstance(data, list) and len(data) == 1, data
        return dict(data[0])


def _kill_pid(pid: int, must_contain: bytes, timeout: float) -> None:
    """SIGTERM then SIGKILL one process, only if its command line names what we started."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if must_contain not in cmdline:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def locked(root: Path = CACHE, timeout: float = LOCK_WAIT) -> Iterator[None]:
    """One run at a time per machine owns the engine and its data root."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DockerError(f"{root}/lock held by another run for {timeout} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_stale_netns(prefix: str = "pea-image-") -> None:
    """Namespaces `pea-image-<pid>-…` left by a run that was killed (its pid is gone)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    for line in out.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = name[len(prefix) :].split("-")[0]
        if name.startswith(prefix) and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


@contextlib.contextmanager
def netns(name: str) -> Iterator[str]:
    """A network namespace with only `lo` up, removed at the end whatever happened."""
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)
