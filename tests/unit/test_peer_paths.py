"""Where `pea receive` writes: whatever the sharer's names say, inside --out, under the
same safe names the web client gives (web/src/names.js)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pea.peer.paths import Names, UnsafePath, open_inside, safe_relative, safe_segment


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/etc/shadow", "etc/shadow"),
        ("C:\\Windows\\system32\\evil.dll", "C_/Windows/system32/evil.dll"),
        ("..\\..\\x.txt", "x.txt"),
        ("a/./b/../c.txt", "a/b/c.txt"),
        ("nul\x00byte.txt", "nul_byte.txt"),
        ("CON", "_CON"),
        ("dir/com1.txt", "dir/_com1.txt"),
        ("evil.exe . ", "evil.exe"),
        ("\u202etxt.exe", "txt.exe"),
        ("a:stream", "a_stream"),
        ("..", "file"),
        ("", "file"),
        ("folder/résumé ✓.txt", "folder/résumé ✓.txt"),
    ],
)
def test_hostile_paths_become_safe_relative_paths(raw: str, want: str) -> None:
    assert safe_relative(raw) == want


def test_long_names_keep_their_extension() -> None:
    seg = safe_segment("é" * 300 + ".tar.gz")
    assert len(seg.encode()) <= 200 and seg.endswith(".gz")


def test_names_repeat_as_numbered_copies_ignoring_case() -> None:
    n = Names()
    assert [n.take(p) for p in ("a.txt", "A.TXT", "../a.txt", "a.txt/b")] == [
        "a.txt",
        "A (2).TXT",
        "a (3).txt",
        "a.txt (2)/b",
    ]


def test_open_inside_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "link").symlink_to(elsewhere)
    (out / "file").symlink_to(elsewhere / "target")
    for rel in ("link/x.txt", "file"):
        with pytest.raises(OSError):
            os.close(open_inside(out, rel, os.O_WRONLY | os.O_CREAT))
    with pytest.raises(UnsafePath):
        open_inside(out, "../x", os.O_WRONLY | os.O_CREAT)
    assert list(elsewhere.iterdir()) == []
    fd = open_inside(out, "new/deeper/f.txt", os.O_WRONLY | os.O_CREAT)
    os.close(fd)
    assert (out / "new" / "deeper" / "f.txt").is_file()
