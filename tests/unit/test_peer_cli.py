"""The command-line peer's pieces that need no network: `pea serve` without aiortc,
hostile text kept away from the terminal, the QR code, the manifest reader, offsets."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("aiortc")

from pea.peer.fetch import read_add
from pea.peer.progress import qr_text, shown
from pea.peer.share import valid_from


def test_the_server_command_never_imports_the_peer_stack() -> None:
    code = (
        "import sys, pea.cli; pea.cli.build_parser().parse_args(['serve']); "
        "bad = [m for m in ('aiortc', 'av', 'rich', 'pea.peer.commands') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_names_cannot_drive_the_terminal() -> None:
    assert shown("a\x1b[2Jb\u202ec.txt") == "a⟨U+001B⟩[2Jb⟨U+202E⟩c.txt"
    assert shown("résumé ✓") == "résumé ✓"


def test_qr_code_has_explicit_colours_and_fits_a_terminal() -> None:
    lines = qr_text("https://pea.example/#3.AAECAwQFBgcICQoLDA0ODw.If4x36FUomFia_hUBG_SJw").split(
        "\n"
    )
    # Black on white set on every cell, whatever the terminal's own theme.
    assert all(line.endswith("\x1b[0m") for line in lines)
    assert all(line.count("▀") == lines[0].count("▀") for line in lines)
    assert lines[0].count("▀") <= 80


def test_manifest_entries_without_the_documented_shape_are_dropped() -> None:
    files, notes = read_add(
        {
            "t": "add",
            "files": [
                {"id": "1", "name": "a", "path": "x/a", "size": 3},
                {"id": "2", "name": "b", "size": -1},
                {"id": "3", "name": "c", "size": 1.5},
                {"id": 4, "name": "d", "size": 1},
                {"id": "5", "name": "e", "size": True},
                {"id": "6", "name": "f", "size": 2, "path": 7},
                "junk",
            ],
            "notes": [{"id": "9", "text": "hi"}, {"text": 3}, None],
        }
    )
    assert [(f.id, f.path, f.size) for f in files] == [("1", "x/a", 3), ("6", "f", 2)]
    assert notes == ["hi"]
    assert read_add({"t": "add", "files": "nope", "notes": {}}) == ([], [])


@pytest.mark.parametrize(
    ("start", "size", "ok"),
    [
        (0, 0, True),
        (0, 5, True),
        (1 << 20, (2 << 20) + 5, True),
        ((2 << 20) + 5, (2 << 20) + 5, True),
        (1, 5 << 20, False),
        (-(1 << 20), 5 << 20, False),
        (3 << 20, 2 << 20, False),
        (1.0, 5, False),
        (True, 5, False),
        ("0", 5, False),
    ],
)
def test_a_get_starts_only_at_a_block_boundary(start: object, size: int, ok: bool) -> None:
    assert valid_from(start, size) is ok


def test_durations_are_positive_finite_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    from pea.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["receive", "LINK"])
    assert (args.connect_timeout, args.wait) == (20.0, 30.0)
    args = parser.parse_args(["send", "f", "--connect-timeout", "45.5"])
    assert args.connect_timeout == 45.5
    for bad in ("0", "-3", "nan", "inf", "1e9", "soon"):
        for verb in (["receive", "LINK", "--wait"], ["send", "f", "--connect-timeout"]):
            with pytest.raises(SystemExit) as e:
                parser.parse_args([*verb, bad])
            assert e.value.code == 2
            assert bad in capsys.readouterr().err
