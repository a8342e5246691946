"""`pea serve`: flags mirror the PEA_* environment variables (flags win)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from types import FrameType

import uvicorn

from pea.app import create_app
from pea.config import FIELDS, ConfigError, Settings, load_settings
from pea.logs import setup_logging
from pea.node import Node

log = logging.getLogger("pea")


class DrainingServer(uvicorn.Server):
    """uvicorn closes every WebSocket with 1012 at once on SIGTERM. pea first drains:
    readiness goes false, peers are told to reconnect elsewhere in batches, and
    only then does uvicorn shut down. A second signal stops at once."""

    def __init__(self, config: uvicorn.Config, node: Node) -> None:
        super().__init__(config)
        self.node = node
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()
            return
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        if self._drain_task is None:
            self._drain_task = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self.node.drain()
        finally:
            self.should_exit = True


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pea", description="pea: peer-to-peer file sharing between browsers."
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    serve = verbs.add_parser(
        "serve",
        help="run a signalling node (and serve the web client)",
        description="Run a signalling node. Every flag has a PEA_* environment variable.",
    )
    for field in FIELDS:
        serve.add_argument(
            field.flag,
            dest=field.name,
            metavar=field.metavar,
            default=None,
            help=f"{field.help} [{field.env}; default: {_shown(field.default)}]",
        )
    verbs.add_parser("settings", help="print every setting as a Markdown table (for the docs)")
    return parser


def settings_table() -> str:
    rows = ["| Flag | Environment | Default | Meaning |", "|---|---|---|---|"]
    for field in FIELDS:
        default = _shown(field.default).replace("|", "\\|")
        rows.append(f"| `{field.flag}` | `{field.env}` | `{default}` | {field.help} |")
    return "\n".join(rows)


def _shown(value: object) -> str:
    if value is None or value == ():
        return "unset"
    if isinstance(value, list):
        import json

        return json.dumps(value)
    return str(value)


def uvicorn_config(app: object, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        # Frames a little over the limit get a `too-large` error from pea;
        # uvicorn only cuts off the absurd ones (close 1009).
        ws_max_size=max(settings.max_frame_bytes * 4, 1 << 20),
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        # Signalling frames are small JSON; deflate costs ~64 KiB per connection.
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=5,
        ssl_certfile=settings.tls_cert,
        ssl_keyfile=settings.tls_key,
        backlog=4096,
        server_header=False,
    )


def tune_gc() -> None:
    """Profiles of a busy node showed ~20 % of CPU in the garbage collector, mostly
    re-scanning long-lived objects. Freezing what start-up made and collecting the
    young generation less often cuts that; nothing here relies on prompt cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb == "settings":
        print(settings_table())
        return
    overrides = {k: v for k, v in vars(args).items() if k != "verb" and v is not None}
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        print(f"pea: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level, settings.log_json)
    app = create_app(settings)
    server = DrainingServer(uvicorn_config(app, settings), app.state.node)
    tune_gc()
    scheme = "https" if settings.tls_cert else "http"
    log.info("pea listening on %s://%s:%d", scheme, settings.host, settings.port)
    server.run()


if __name__ == "__main__":
    main()
