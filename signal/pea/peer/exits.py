"""Exit codes of `pea send` / `pea receive` and the one exception that carries them.

Every failure a person can meet ends as a `PeerError`: a one-line sentence and the
exit code a script can act on (README and docs/cli.md list them)."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    DONE = 0
    FAILED = 1  # anything else: a file that exists, a disk error, nothing matched --only
    USAGE = 2  # bad arguments or a link that is not a pea link (argparse uses 2 too)
    SERVER_UNREACHABLE = 3  # no WebSocket to the signalling server, or it refused us
    NO_DIRECT_CONNECTION = 4  # ICE found no path (strict NAT, firewall) or timed out
    TAMPERED = 5  # a signal did not verify: the server or the network altered it
    VERIFICATION_FAILED = 6  # the bytes received do not have the announced SHA-256
    SHARER_LEFT = 7  # the sharer is not there, or left before everything arrived
    INTERRUPTED = 130  # Ctrl-C during a download (128 + SIGINT, as shells do)


class PeerError(Exception):
    """A failure shown as one line, ending the command with `exit`."""

    def __init__(self, exit: Exit, message: str, code: str = "") -> None:
        super().__init__(message)
        self.exit = exit
        self.message = message
        self.code = code or exit.name.lower().replace("_", "-")
