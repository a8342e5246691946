"""`pea serve`: flags mirror the PEA_* environment variables (flags win)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import Iterator
from importlib import metadata
from types import FrameType

import uvicorn

from pea import uvicorn_compat
from pea.app import create_app, create_metrics_app
from pea.config import FIELDS, ConfigError, Settings, load_settings
from pea.errors import js_module, markdown_table
from pea.http_limits import limited_protocol
from pea.logs import setup_logging
from pea.node import Node

log = logging.getLogger("pea")


class DrainingServer(uvicorn.Server):
    """uvicorn closes every WebSocket with 1012 at once on SIGTERM. pea first drains:
    readiness goes false, peers are told to reconnect elsewhere in batches, and
    only then does uvicorn shut down. A second signal stops at once."""

    def __init__(
        self, config: uvicorn.Config, node: Node, metrics: uvicorn.Config | None = None
    ) -> None:
        super().__init__(config)
        self.node = node
        self.metrics = SideServer(metrics) if metrics is not None else None
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        side = asyncio.create_task(self.metrics.serve()) if self.metrics else None
        try:
            await super().serve(sockets)  # type: ignore[arg-type]
        finally:
            if self.metrics is not None and side is not None:
                self.metrics.should_exit = True
                await side

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_task is not None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)
            # Private, checked at start-up by pea.uvicorn_compat: else uvicorn
            # re-raises the signal at exit, after pea drained gracefully.
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


class SideServer(uvicorn.Server):
    """The /metrics server, in the same event loop as the public one. The public
    server owns the process's signals (draining) and stops this one after itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pea", description="pea: peer-to-peer file sharing between browsers."
    )
    # The installed distribution's version (pyproject.toml), as a container image reports it.
    parser.add_argument("--version", action="version", version=f"pea {metadata.version('pea')}")
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
    errors = verbs.add_parser(
        "errors",
        help="print the error catalogue (for docs/protocol.md or web/src/errors.gen.js)",
    )
    errors.add_argument(
        "form",
        choices=("markdown", "js"),
        help="markdown: the table of docs/protocol.md; js: the module web/src/errors.gen.js",
    )
    doctor = verbs.add_parser(
        "doctor",
        help="check a deployment from here: page, WebSocket through the proxy, origin, "
        "secure context, STUN and NAT behaviour, TURN credentials",
    )
    doctor.add_argument(
        "url", nargs="?", default="http://localhost:8080", help="the URL people open"
    )
    doctor.add_argument("--timeout", type=float, default=5.0, help="seconds per check")
    doctor.add_argument("--origin", default=None, help="Origin to send (default: the URL's)")

    from pea.peer.args import add_parsers

    add_parsers(verbs)
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
        # httptools plus a header deadline and size cap (pea.http_limits).
        http=limited_protocol(settings.header_timeout, settings.max_header_bytes),
        # X-Forwarded-For/-Proto count only from a TCP peer in --trusted-proxies;
        # uvicorn then rewrites scope["client"] for HTTP and WebSocket alike.
        # (uvicorn's own default trusts 127.0.0.1, which is not ours to assume.)
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
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


def metrics_config(app: object, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.metrics_port,
        http=limited_protocol(settings.header_timeout, settings.max_header_bytes),
        proxy_headers=False,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
        server_header=False,
    )


def tune_gc() -> None:
    """Profiles of a busy node showed ~20 % of CPU in the garbage collector, mostly
    re-scanning long-lived objects. Freezing what start-up made and collecting the
    young generation less often cuts that; nothing here relies on prompt cycles."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def run_peer(args: argparse.Namespace) -> int:
    """`pea send` / `pea receive`, imported only now: `pea serve` needs no aiortc."""
    try:
        from pea.peer import commands
    except ImportError as exc:
        print(
            f"pea: error: pea {args.verb} needs the cli extra ({exc.name} is missing): "
            "pip install 'pea[cli]'",
            file=sys.stderr,
        )
        return 2
    return commands.run(args)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb in ("send", "receive"):
        raise SystemExit(run_peer(args))
    if args.verb == "settings":
        print(settings_table())
        return
    if args.verb == "errors":
        print(
            markdown_table() if args.form == "markdown" else js_module(),
            end="\n" * (args.form == "markdown"),
        )
        return
    if args.verb == "doctor":
        from pea.doctor import run as doctor

        raise SystemExit(doctor(args.url, args.timeout, args.origin))
    overrides = {k: v for k, v in vars(args).items() if k != "verb" and v is not None}
    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        print(f"pea: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings.log_level, settings.log_json)
    try:
        uvicorn_compat.check()
    except uvicorn_compat.IncompatibleUvicorn as exc:
        print(f"pea: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(settings)
    node: Node = app.state.node
    metrics = metrics_config(create_metrics_app(node), settings) if settings.metrics_port else None
    server = DrainingServer(uvicorn_config(app, settings), node, metrics)
    tune_gc()
    scheme = "https" if settings.tls_cert else "http"
    log.info("pea listening on %s://%s:%d", scheme, settings.host, settings.port)
    if settings.metrics_port:
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    server.run()


if __name__ == "__main__":
    main()
