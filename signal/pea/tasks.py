"""Supervision of a node's long-running tasks (bus publisher and listener, heartbeat).

A task that dies silently stops a node's work for every room while the node still
looks ready. Under a `Supervisor`, an unexpected exception (or a task returning,
which a long-running loop never should) is logged with its traceback, counted in
`pea_task_failures_total{task=...}`, and the task restarted after a jittered
backoff. A task that keeps failing right after each restart makes the node report
not ready, with the reason, until it has run for a while without failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("pea.tasks")

Run = Callable[[], Coroutine[Any, Any, None]]

BACKOFF = 0.1
MAX_BACKOFF = 5.0
BROKEN_AFTER = 5
"""Failures in a row, each within HEALTHY_AFTER of its restart, that make a task broken."""
HEALTHY_AFTER = 10.0
"""Seconds a restarted task must run without failing to count as recovered."""


class Supervisor:
    def __init__(
        self,
        failures: Counter | None = None,
        *,
        backoff: float | None = None,
        max_backoff: float | None = None,
        broken_after: int | None = None,
        healthy_after: float | None = None,
    ) -> None:
        # Defaults are read when a supervisor is made, so tests can shorten them.
        self._failures = failures
        self._backoff = BACKOFF if backoff is None else backoff
        self._max_backoff = MAX_BACKOFF if max_backoff is None else max_backoff
        self._broken_after = BROKEN_AFTER if broken_after is None else broken_after
        self._healthy_after = HEALTHY_AFTER if healthy_after is None else healthy_after
        self._broken: dict[str, str] = {}

    @property
    def broken(self) -> dict[str, str]:
        """Tasks failing over and over: name → their last error."""
        return dict(self._broken)

    def start(self, name: str, run: Run) -> asyncio.Task[None]:
        """Run `run()` until the returned task is cancelled, restarting it when it fails."""
        if self._failures is not None:
            self._failures.labels(name)  # shows 0 from the start
        return asyncio.create_task(self._keep(name, run), name=f"pea-{name}")

    def once(self, name: str, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A one-shot task: a failure is logged and counted, not retried."""
        task = asyncio.create_task(coro, name=f"pea-{name}")
        task.add_done_callback(lambda t: self._done_once(name, t))
        return task

    def _done_once(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("task %s failed", name, exc_info=exc)
        self._count(name)

    def _count(self, name: str) -> None:
        if self._failures is not None:
            self._failures.labels(name).inc()

    async def _keep(self, name: str, run: Run) -> None:
        delay = self._backoff
        in_a_row = 0
        try:
            while True:
                task = asyncio.ensure_future(run())
                try:
                    done, _ = await asyncio.wait({task}, timeout=self._healthy_after)
                    if not done:
                        if in_a_row or name in self._broken:
                            log.info("task %s runs again", name)
                        delay, in_a_row = self._backoff, 0
                        self._broken.pop(name, None)
                    await task
                    reason = "returned"
                    log.error("task %s returned; restarting it", name)
                except asyncio.CancelledError:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    raise
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"[:200]
                    log.exception("task %s failed; restarting it", name)
                self._count(name)
                in_a_row += 1
                if in_a_row >= self._broken_after and name not in self._broken:
                    self._broken[name] = reason
                    log.error(
                        "task %s failed %d times in a row; the node reports not ready",
                        name,
                        in_a_row,
                    )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self._max_backoff)
        finally:
            self._broken.pop(name, None)
