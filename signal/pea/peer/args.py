"""The arguments of `pea send` and `pea receive` (no aiortc here: `pea --help` and
`pea serve` build the parser without the cli extra installed)."""

from __future__ import annotations

import argparse
import math

DEFAULT_SERVER = "http://localhost:8080"
MAX_SECONDS = 24 * 3600


def seconds(text: str) -> float:
    """A duration on the command line: a positive, finite number of seconds (at most a day)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SECONDS} seconds: {text!r}")
    return value


def add_parsers(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], default_server: str = DEFAULT_SERVER
) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--ice-servers",
        metavar="JSON",
        help="RTCIceServer list replacing the one the server sends, e.g. "
        '\'[{"urls": "stun:stun.example.org:3478"}]\'',
    )
    common.add_argument(
        "--connect-timeout",
        type=seconds,
        default=20.0,
        metavar="SECONDS",
        help="how long a direct connection may take to set up [default: 20]",
    )
    common.add_argument(
        "--json", action="store_true", help="print progress and results as JSON lines, for scripts"
    )
    s = verbs.add_parser(
        "send",
        parents=[common],
        help="share files, folders or standard input from the terminal",
        description="Share files and folders (paths kept) with browsers or `pea receive`, "
        "straight from this machine. Prints a link and its QR code; Ctrl-C stops sharing.",
    )
    s.add_argument(
        "paths", nargs="*", metavar="PATH", help="files and folders; - for standard input"
    )
    s.add_argument(
        "--server", default=default_server, help=f"pea server URL [default: {default_server}]"
    )
    s.add_argument("--text", action="append", metavar="NOTE", help="also share a note (repeatable)")
    s.add_argument(
        "--once", action="store_true", help="stop once a receiver has every file, verified"
    )
    s.add_argument("--name", default="stdin", help="the file name standard input is shared under")
    s.add_argument("--no-qr", action="store_true", help="do not print the link's QR code")
    r = verbs.add_parser(
        "receive",
        parents=[common],
        help="download what a pea link shares",
        description="Download what a pea link shares, straight from the sharer, verified. "
        "Re-running the same command resumes an interrupted download.",
    )
    r.add_argument("link", metavar="LINK")
    r.add_argument(
        "dest", nargs="?", metavar="DIR|-", help="folder to save into, or - for standard output"
    )
    r.add_argument("--out", "-o", metavar="DIR", help="folder to save into [default: .]")
    r.add_argument(
        "--only", nargs="+", metavar="NAME", help="only these files (name, path or glob)"
    )
    r.add_argument("--overwrite", action="store_true", help="replace files that exist already")
    r.add_argument("--list", action="store_true", help="list what is shared and download nothing")
    r.add_argument("--server", help="pea server URL, instead of the one the link names")
    r.add_argument(
        "--wait",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the sharer [default: 30]",
    )
