"""`pea send` and `pea receive` as a test runs them: child processes with --json,
their events collected line by line, every wait bounded, stopped by their PID."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from signal import SIGINT
from typing import Any

from tests.support.procs import inherited_env, pea_exe

Event = dict[str, Any]
# aiortc runs ICE and DTLS in Python, slowly on a loaded 2-core CI machine. (Earlier
# connections that failed after 20 s were a signalling-order bug, fixed in
# 75c306f, not slowness.) The tests are about what happens once a connection is made.
CONNECT_TIMEOUT = "60"


class CliProc:
    """One `pea send|receive ... --json` process; its JSON events as they come."""

    def __init__(self, args: list[str], stdout_data: bool = False) -> None:
        self.args = [pea_exe(), *args, "--json", "--connect-timeout", CONNECT_TIMEOUT]
        self.events: list[Event] = []
        self.stamps: list[float] = []  # time.monotonic() when each event arrived
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.stdout_data = stdout_data
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=inherited_env(),
            start_new_session=True,
        )
        self.data = b""
        events_from = self.proc.stderr if stdout_data else self.proc.stdout
        other = self.proc.stdout if stdout_data else self.proc.stderr
        assert events_from is not None and other is not None
        self._threads = [
            threading.Thread(target=self._events, args=(events_from,), daemon=True),
            threading.Thread(target=self._other, args=(other,), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _events(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    self.events.append(json.loads(line))
                    self.stamps.append(time.monotonic())
                self.cond.notify_all()
        stream.close()
        with self.cond:
            self.cond.notify_all()

    def _other(self, stream: Any) -> None:
        if self.stdout_data:
            self.data = stream.read()
        else:
            for raw in iter(stream.readline, b""):
                with self.cond:
                    self.lines.append(raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    def wait_event(self, pred: Callable[[Event], bool], timeout: float, what: str) -> Event:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._alive_readers()):
                    raise AssertionError(
                        f"no {what} within {timeout:g} s from {self.args[1]}; output:\n"
                        + "\n".join(self.lines[-40:])
                    )
                self.cond.wait(min(left, 0.2))

    def _alive_readers(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def first_time(self, pred: Callable[[Event], bool]) -> float | None:
        """When the first event matching `pred` arrived (time.monotonic()), if one did."""
        with self.cond:
            return next((t for e, t in zip(self.events, self.stamps, strict=True) if pred(e)), None)

    def named(self, event: str) -> list[Event]:
        with self.cond:
            return [e for e in self.events if e.get("event") == event]

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(
                f"{self.args[1]} still running after {timeout:g} s:\n" + "\n".join(self.lines[-40:])
            ) from None
        for t in self._threads:
            t.join(5)
        return rc

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(SIGINT)

    def stop(self, timeout: float = 10) -> int:
        """Ctrl-C, then SIGKILL if it does not exit in time."""
        self.interrupt()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        for t in self._threads:
            t.join(5)
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for t in self._threads:
            t.join(5)

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)


def send(server: str, *args: str | Path) -> tuple[CliProc, str]:
    """Start `pea send`; returns it and the link it printed."""
    p = CliProc(["send", "--server", server, *map(str, args)])
    link = p.wait_event(lambda e: e.get("event") == "link", 30, "link")["link"]
    return p, str(link)


@contextlib.contextmanager
def sharing(server: str, *args: str | Path) -> Iterator[tuple[CliProc, str]]:
    """`pea send` for the block's length (killed at its end): the process and its link."""
    p, link = send(server, *args)
    try:
        yield p, link
    finally:
        p.kill()


@contextlib.contextmanager
def downloading(
    server: str, src: Path, out: Path, past: int
) -> Iterator[tuple[CliProc, str, CliProc]]:
    """`pea send SRC` and a `pea receive` of it into OUT that has got `past` bytes: the
    sharer, its link and the receiver, mid-file."""
    with sharing(server, src) as (sender, link):
        r = receive(link, "--out", out)
        r.wait_event(
            lambda e: e.get("event") == "download" and e["bytes"] >= past,
            90,
            f"{past} bytes received",
        )
        yield sender, link, r


def receive(link: str, *args: str | Path) -> CliProc:
    str_args = list(map(str, args))
    return CliProc(["receive", link, *str_args], stdout_data="-" in str_args[:1])


def saved(p: CliProc) -> dict[str, Event]:
    return {str(e["path"]): e for e in p.named("saved")}


class Sampler:
    """CPU seconds and resident memory of one process, every 0.1 s in a thread, as
    (time.monotonic(), rss) samples; `mark()` starts the measured stretch: the CPU count
    and the RSS baseline are taken there."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.error = psutil.Error
        self.every = every
        self.cpu0 = self.cpu = 0.0
        self.base = 0
        self.samples: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with contextlib.suppress(self.error):
            t = self.proc.cpu_times()
            rss = self.proc.memory_info().rss
            with self.lock:
                self.cpu = t.user + t.system
                self.samples.append((time.monotonic(), rss))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def mark(self) -> None:
        self._sample()
        with self.lock:
            self.cpu0 = self.cpu
            self.base = self.samples[-1][1] if self.samples else 0
            self.samples = self.samples[-1:]

    def stop(self) -> None:
        self._sample()
        self._stop.set()
        self._thread.join(5)

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        with self.lock:
            return max((r for t, r in self.samples if since <= t <= until), default=0)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu - self.cpu0
