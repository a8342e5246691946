"""The `pea send` and `pea receive` commands: arguments in, an exit code out.
Only imported when one of them runs (it pulls in aiortc)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiortc import RTCIceServer

from pea.peer.exits import Exit, PeerError
from pea.peer.progress import Reporter, reporter
from pea.peer.rtc import allow_loopback, ice_servers


def _ice_override(raw: str | None) -> list[RTCIceServer] | None:
    if raw is None:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, list):
        raise PeerError(
            Exit.USAGE,
            "--ice-servers takes a JSON list of RTCIceServer objects, e.g. "
            '\'[{"urls": "stun:stun.example.org:3478"}]\' ([] for none)',
        )
    return ice_servers(parsed)


def _only_loopback() -> bool:
    """A loopback-only network namespace: 127.0.0.1 is the one address there is."""
    try:
        import socket

        return [n for _, n in socket.if_nameindex()] == ["lo"]
    except OSError:
        return False


def _run(report: Reporter, main: Callable[[], Awaitable[None]], ctrl_c: Exit) -> int:
    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        stopped = False

        def stop() -> None:
            nonlocal stopped
            stopped = True
            task.cancel()

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, stop)
            loop.add_signal_handler(signal.SIGTERM, stop)
        try:
            await main()
        except asyncio.CancelledError:
            if not stopped:
                raise
            if ctrl_c != Exit.DONE:
                report.emit("error", code="interrupted", exit=int(ctrl_c), message="interrupted")
            return int(ctrl_c)
        except PeerError as e:
            report.emit("error", code=e.code, exit=int(e.exit), message=e.message)
            return int(e.exit)
        report.emit("done")
        return 0

    logging.basicConfig(level=os.environ.get("PEA_CLI_LOG", "WARNING").upper())
    try:
        return asyncio.run(guarded())
    finally:
        report.close()


def send(args: argparse.Namespace) -> int:
    from pea.peer.files import Catalogue
    from pea.peer.link import is_loopback_host, origin_of
    from pea.peer.share import Sharer

    report = reporter(args.json, data_to_stdout=False)
    holder: dict[str, object] = {}

    async def main() -> None:
        origin = origin_of(args.server)
        from urllib.parse import urlsplit

        allow_loopback(is_loopback_host(urlsplit(origin).hostname or "") or _only_loopback())
        catalogue = Catalogue()
        holder["catalogue"] = catalogue
        if not args.paths and not args.text:
            raise PeerError(Exit.USAGE, "nothing to share: give files, folders, - or --text")
        catalogue.add_paths(args.paths, args.name)
        for text in args.text or []:
            catalogue.add_note(text)
        qr = not args.no_qr and not args.json and sys.stdout.isatty()
        sharer = Sharer(
            catalogue,
            origin,
            report,
            once=args.once,
            ice_override=_ice_override(args.ice_servers),
            qr=qr,
            connect_timeout=args.connect_timeout,
        )
        try:
            await sharer.run()
        finally:
            await sharer.close()

    try:
        return _run(report, main, Exit.DONE)
    finally:
        c = holder.get("catalogue")
        if c is not None:
            c.close()  # type: ignore[attr-defined]


def receive(args: argparse.Namespace) -> int:
    from pea.peer.fetch import Fetcher
    from pea.peer.link import parse_link

    to_stdout = args.dest == "-"
    report = reporter(args.json, data_to_stdout=to_stdout)

    async def main() -> None:
        share = parse_link(args.link, args.server)
        allow_loopback(share.loopback or _only_loopback())
        out = None if to_stdout else Path(args.dest or args.out or ".")
        fetcher = Fetcher(
            share,
            report,
            out=out,
            only=args.only or [],
            overwrite=args.overwrite,
            list_only=args.list,
            ice_override=_ice_override(args.ice_servers),
            wait=args.wait,
            connect_timeout=args.connect_timeout,
        )
        await fetcher.run()

    return _run(report, main, Exit.INTERRUPTED)


def run(args: argparse.Namespace) -> int:
    return send(args) if args.verb == "send" else receive(args)
