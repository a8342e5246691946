"""What `pea send` shares: files, folders (paths kept, as a browser's folder pick
gives them), standard input, notes; each file hashed once, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from pea.peer.exits import Exit, PeerError

BLOCK = 1 << 20
READ = 4 << 20


@dataclass
class SharedFile:
    id: str
    name: str
    path: str
    size: int
    type: str
    mtime: int
    source: Path
    # The whole file's SHA-256 and each 1 MiB block's, computed once when it is added.
    hashes: asyncio.Future[tuple[str, list[str]]] = field(repr=False)

    def entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "size": self.size,
            "type": self.type,
            "mtime": self.mtime,
        }


def _hash(path: Path, size: int) -> tuple[str, list[str]]:
    whole = hashlib.sha256()
    blocks: list[str] = []
    left = size
    with open(path, "rb") as f:
        while left > 0:
            block = f.read(min(BLOCK, left))
            if not block:
                raise OSError(f"{path} is shorter than when it was shared")
            whole.update(block)
            blocks.append(hashlib.sha256(block).hexdigest())
            left -= len(block)
    return whole.hexdigest(), blocks


class Catalogue:
    def __init__(self) -> None:
        self.files: dict[str, SharedFile] = {}
        self.notes: list[dict[str, str]] = []
        self._next = 1
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._hashing: list[asyncio.Task[None]] = []

    def _id(self) -> str:
        n = self._next
        self._next += 1
        return str(n)

    def add_note(self, text: str) -> None:
        self.notes.append({"id": self._id(), "text": text})

    def add_paths(self, args: list[str], stdin_name: str) -> None:
        for arg in args:
            if arg == "-":
                self._add_stdin(stdin_name)
                continue
            p = Path(arg)
            if p.is_dir():
                self._add_folder(p)
            elif p.is_file():
                self._add_file(p, p.name)
            else:
                raise PeerError(Exit.FAILED, f"{arg}: no such file or folder")

    def _add_folder(self, root: Path) -> None:
        top = root.resolve().name or "folder"
        found = False
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                p = Path(dirpath) / fn
                if p.is_file():  # regular files (and links to them), not sockets or fifos
                    found = True
                    rel = p.relative_to(root).as_posix()
                    self._add_file(p, f"{top}/{rel}")
        if not found:
            raise PeerError(Exit.FAILED, f"{root}: the folder holds no files")

    def _add_file(self, p: Path, path: str) -> None:
        st = p.stat()
        mime = mimetypes.guess_type(p.name)[0] or ""
        loop = asyncio.get_running_loop()
        f = SharedFile(
            self._id(),
            p.name,
            path,
            st.st_size,
            mime,
            int(st.st_mtime * 1000),
            p,
            loop.create_future(),
        )
        self.files[f.id] = f
        self._hashing.append(asyncio.create_task(self._hash(f)))

    def _add_stdin(self, name: str) -> None:
        """Standard input is read to a temporary file first: the manifest needs its
        size, and every receiver its bytes again (the disk holds it, not memory)."""
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="pea-send-")
        dest = Path(self._tmp.name) / f"stdin-{self._next}"
        src: BinaryIO = sys.stdin.buffer
        with open(dest, "wb") as out:
            shutil.copyfileobj(src, out, READ)
        self._add_file(dest, name)
        f = self.files[str(self._next - 1)]
        f.name = f.path = name
        f.type = mimetypes.guess_type(name)[0] or ""

    async def _hash(self, f: SharedFile) -> None:
        try:
            f.hashes.set_result(await asyncio.to_thread(_hash, f.source, f.size))
        except OSError as e:
            f.hashes.set_exception(e)

    def manifest(self) -> list[dict[str, Any]]:
        """The `add` messages: files first, then notes, at most 200 entries each."""
        files = [f.entry() for f in self.files.values()]
        out: list[dict[str, Any]] = []
        for i in range(0, len(files), 200):
            out.append({"t": "add", "files": files[i : i + 200], "notes": []})
        for i in range(0, len(self.notes), 200):
            out.append({"t": "add", "files": [], "notes": self.notes[i : i + 200]})
        return out

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def close(self) -> None:
        for t in self._hashing:
            t.cancel()
        for f in self.files.values():
            if f.hashes.done() and not f.hashes.cancelled():
                f.hashes.exception()  # retrieved: no "never retrieved" warning
        if self._tmp is not None:
            self._tmp.cleanup()
