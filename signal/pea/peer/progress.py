"""What the person (or a script, with --json) sees: one reporter, two forms.

`rich` draws several live progress bars at once (one per receiver and file, with
speed and ETA) from the single asyncio thread, and degrades to plain lines when
the output is not a terminal; tqdm's several-bars mode needs a fixed position per
bar and redraws badly when lines are printed between them."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from pea.peer.paths import _CONTROL, _INVISIBLE

PROGRESS_EVERY = 0.25  # seconds between two progress events of one transfer (--json)


def shown(text: str) -> str:
    """Hostile text for a terminal: controls and invisible or direction-changing
    characters spelled out as ⟨U+XXXX⟩ (an escape sequence must never reach the tty)."""

    def spell(c: str) -> str:
        return f"⟨U+{ord(c):04X}⟩"

    return "".join(spell(c) if _CONTROL.match(c) or _INVISIBLE.match(c) else c for c in text)


class Reporter:
    def emit(self, event: str, **fields: Any) -> None:
        raise NotImplementedError

    def link(self, url: str, qr: bool) -> None:
        self.emit("link", link=url)

    def close(self) -> None:
        pass


class JsonReporter(Reporter):
    """One JSON object per line: {"event": ..., ...}; progress at most 4 times a second."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._last: dict[Any, float] = {}

    def emit(self, event: str, **fields: Any) -> None:
        if event in ("upload", "download"):
            key = (event, fields.get("receiver"), fields.get("path"))
            now = time.monotonic()
            if now - self._last.get(key, 0) < PROGRESS_EVERY and fields["bytes"] != fields["size"]:
                return
            self._last[key] = now
        self.out.write(json.dumps({"event": event, **fields}, ensure_ascii=False) + "\n")
        self.out.flush()


class HumanReporter(Reporter):
    def __init__(self, data_to_stdout: bool = False) -> None:
        self.err = Console(stderr=True, highlight=False)
        self.out = self.err if data_to_stdout else Console(highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.err,
            transient=False,
        )
        self.tasks: dict[Any, TaskID] = {}
        self.started = False

    def _task(self, key: Any, label: str, size: int) -> TaskID:
        if not self.started:
            self.progress.start()
            self.started = True
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(escape(label), total=size)
        return self.tasks[key]

    def say(self, text: str) -> None:
        self.progress.console.print(text) if self.started else self.err.print(text)

    def link(self, url: str, qr: bool) -> None:
        self.out.print("Share this link:", style="bold")
        self.out.print(url, soft_wrap=True, markup=False)
        if qr:
            self.out.file.write(qr_text(url) + "\n")
            self.out.file.flush()
        self.err.print("Waiting for receivers; Ctrl-C stops sharing.")

    def emit(self, event: str, **f: Any) -> None:
        if event == "receiver":
            who = f"receiver {f['receiver']}"
            why = f" ({f['reason']})" if f.get("reason") else ""
            self.say(f"{who}: {f['state']}{escape(why)}")
        elif event in ("upload", "download"):
            who = f"#{f['receiver']} " if "receiver" in f else ""
            key = (event, f.get("receiver"), f["path"])
            task = self._task(key, who + shown(f["path"]), f["size"])
            self.progress.update(task, completed=f["bytes"])
        elif event == "uploaded":
            state = "verified" if f["verified"] else "NOT verified by the receiver"
            self.say(f"receiver {f['receiver']}: {escape(shown(f['path']))} {state}")
        elif event == "listing":
            total = sum(x["size"] for x in f["files"])
            self.say(f"{len(f['files'])} file(s) shared, {total} bytes:")
            for x in f["files"]:
                self.say(f"  {escape(shown(x['path']))}  ({x['size']} bytes)")
            for n in f["notes"]:
                self.say(f"  note: {escape(shown(n))}")
        elif event == "saved":
            self.say(f"{escape(shown(f['dest']))}: verified (SHA-256 {f['sha256'][:16]}…)")
        elif event in ("warning", "info"):
            self.say(escape(f["message"]))
        elif event == "error":
            self.close()
            # One line whatever the width: scripts and logs match on it (rich would wrap
            # at 80 columns when standard error is not a terminal).
            line = f"pea: error: {escape(f['message'])}"
            self.err.print(line, style="red", markup=True, soft_wrap=True)
        elif event == "connected":
            self.say("Connected to the sharer.")

    def close(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False


def qr_text(url: str) -> str:
    """The link's QR code as text with explicit colours (dark modules on a light
    background), so it reads the same in light and dark terminals; a quiet zone of
    light modules around it, two rows per line with half blocks."""
    import qrcode

    qr = qrcode.QRCode(border=2, error_correction=qrcode.constants.ERROR_CORRECT_L)
    qr.add_data(url)
    qr.make(fit=True)
    m = qr.get_matrix()
    if len(m) % 2:
        m.append([False] * len(m[0]))
    lines = []
    for top, bottom in zip(m[0::2], m[1::2], strict=True):
        cells = []
        for a, b in zip(top, bottom, strict=True):
            # Foreground = the upper module, background = the lower one: black or white.
            fg = "30" if a else "97"
            bg = "40" if b else "107"
            cells.append(f"\x1b[{fg};{bg}m▀")
        lines.append("".join(cells) + "\x1b[0m")
    return "\n".join(lines)


def reporter(json_mode: bool, data_to_stdout: bool) -> Reporter:
    if json_mode:
        return JsonReporter(sys.stderr if data_to_stdout else sys.stdout)
    return HumanReporter(data_to_stdout)
