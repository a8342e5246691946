"""Where a received file goes. The sharer's `name` and `path` are hostile text: they
become a relative path of safe segments (the rules of the web client's names.js,
so a file gets the same name from the CLI as in the browser's zip), and the file is
opened so that nothing, not even a symlink planted in DIR, puts it outside DIR."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

MAX_SEGMENT_BYTES = 200
MAX_PATH_BYTES = 1000
MAX_SEGMENTS = 32
PART_SUFFIX = ".pea-part"

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\U000e0000-\U000e007f]"
)
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_RESERVED = re.compile(r"(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])", re.I)
_PICTURE = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\U0001f3fb-\U0001f3ff\ufe0f]")


def _joins_emoji(s: str, at: int) -> bool:
    """A zero-width joiner between two pictographs is part of one emoji (👨‍👩‍👧)."""
    return (
        s[at] == "\u200d"
        and 0 < at < len(s) - 1
        and bool(_PICTURE.match(s[at - 1]))
        and bool(_PICTURE.match(s[at + 1]))
    )


def _utf8_len(s: str) -> int:
    return len(s.encode("utf-8", "surrogatepass"))


def _cut(s: str, limit: int) -> str:
    out, n = [], 0
    for c in s:
        n += _utf8_len(c)
        if n > limit:
            break
        out.append(c)
    return "".join(out)


def _split_ext(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0 or len(name) - dot > 16:
        return name, ""
    return name[:dot], name[dot:]


def _bound(name: str, limit: int = MAX_SEGMENT_BYTES) -> str:
    if _utf8_len(name) <= limit:
        return name
    stem, ext = _split_ext(name)
    keep = ext if _utf8_len(ext) < limit / 2 else ""
    return _cut(stem, limit - _utf8_len(keep)) + keep


def safe_segment(raw: str) -> str:
    """One path segment, safe on Linux, macOS and Windows; "" when nothing is left."""
    s = _SURROGATE.sub("\ufffd", raw)
    s = "".join(c for i, c in enumerate(s) if not (_INVISIBLE.match(c) and not _joins_emoji(s, i)))
    s = _CONTROL.sub("_", s)
    # ":" makes a drive ("C:") or an NTFS stream; slashes never survive inside a segment.
    s = re.sub(r"[:/\\]", "_", s).strip()
    if s == "" or set(s) == {"."}:
        return ""
    # Windows drops trailing dots and spaces ("evil.exe ." is "evil.exe" there).
    s = s.rstrip(". ")
    if s == "":
        return ""
    if _RESERVED.fullmatch(s.split(".")[0].strip()):
        s = "_" + s
    return _bound(s)


def safe_relative(path: str, fallback: str = "file") -> str:
    """A `/`-separated relative path: no absolute path, drive, `..`, `.` or empty segment."""
    segs = [seg for seg in (safe_segment(p) for p in re.split(r"[/\\]+", path)) if seg]
    if not segs:
        return safe_segment(fallback) or "file"
    if len(segs) > MAX_SEGMENTS:
        segs = [*segs[: MAX_SEGMENTS - 1], segs[-1]]
    while len(segs) > 1 and _utf8_len("/".join(segs)) > MAX_PATH_BYTES:
        segs.pop(0)
    return "/".join(segs)


def _numbered(name: str, n: int) -> str:
    stem, ext = _split_ext(name)
    return f"{stem} ({n}){ext}"


class Names:
    """Unique relative paths for one download run, compared without case (Windows and
    macOS folders ignore it), never equal to a folder of another entry."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()

    def take(self, path: str) -> str:
        segs = safe_relative(path).split("/")
        base = segs.pop()
        dirs: list[str] = []
        for seg in segs:
            d, n = seg, 2
            while "/".join([*dirs, d]).lower() in self.files:
                d, n = f"{seg} ({n})", n + 1
            dirs.append(d)

        def at(b: str) -> str:
            return "/".join([*dirs, b])

        name, n = base, 2
        while at(name).lower() in self.files or at(name).lower() in self.dirs:
            name, n = _numbered(base, n), n + 1
        for i in range(1, len(dirs) + 1):
            self.dirs.add("/".join(dirs[:i]).lower())
        self.files.add(at(name).lower())
        return at(name)


class UnsafePath(Exception):
    pass


def open_inside(root: Path, relative: str, flags: int, mode: int = 0o644) -> int:
    """Open root/relative (a path from `safe_relative`), creating folders, following no
    symlink on the way: each folder is opened relative to the one before, with
    O_NOFOLLOW, so a symlink planted anywhere under root cannot lead outside it."""
    parts = relative.split("/")
    if any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise UnsafePath(relative)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        out = os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=fd)
        if not stat.S_ISREG(os.fstat(out).st_mode):
            os.close(out)
            raise UnsafePath(relative)
        return out
    finally:
        os.close(fd)


def exists_inside(root: Path, relative: str) -> bool:
    try:
        fd = open_inside(root, relative, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except (UnsafePath, OSError):
        return True  # something is there that is not ours to replace
    os.close(fd)
    return True


def rename_inside(root: Path, src: str, dst: str) -> None:
    """Rename within one folder under root (src and dst differ only in their last part)."""
    parent = src.rsplit("/", 1)[0] if "/" in src else ""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if parent:
            for part in parent.split("/"):
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nxt
        os.replace(src.rsplit("/", 1)[-1], dst.rsplit("/", 1)[-1], src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)
