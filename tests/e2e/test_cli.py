"""`pea send` and `pea receive` with each other, through two nodes of a cluster: files
and folders arrive whole and verified under their paths, several receivers at once."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from signal import SIGCONT, SIGSTOP

import pytest

from tests.support.cli import downloading, receive, saved, sharing
from tests.support.pages import MiB, sha256_file, write_random
from tests.support.procs import PeaNode

pytestmark = pytest.mark.timeout(180)


def connections_counted(nodes: tuple[PeaNode, ...]) -> float:
    """Direct connections reported `connected` (signalling 1.1 `outcome`) to these nodes."""
    total = 0.0
    for node in nodes:
        with urllib.request.urlopen(node.metrics_url, timeout=5) as res:
            for line in res.read().decode().splitlines():
                if line.startswith("pea_peer_connections_total{") and 'result="connected"' in line:
                    total += float(line.rsplit(" ", 1)[1])
    return total


def big_file(folder: Path, size: int) -> Path:
    write_random(folder / "big.bin", size)
    return folder / "big.bin"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-share")
    write_random(root / "top.bin", 3 * MiB + 5)
    write_random(root / "folder" / "deep" / "data.bin", 70_000)
    (root / "folder" / "empty.txt").write_bytes(b"")
    (root / "folder" / "résumé ✓.txt").write_text("bonjour\n")
    return root


def test_cli_to_cli_files_folders_and_note(
    cluster: tuple[PeaNode, PeaNode], tree: Path, tmp_path: Path
) -> None:
    node_a, node_b = cluster
    counted = connections_counted(cluster)
    shared = (tree / "top.bin", tree / "folder", "--text", "door code 1234", "--once")
    with sharing(node_a.url, *shared) as (sender, link):
        assert link.startswith(node_a.url + "/#3.")
        # The receiver reaches the sharer through the other node: the server is the link's
        # own unless told otherwise.
        link_b = node_b.url + "/" + link[link.index("#") :]
        r = receive(link_b, "--out", tmp_path / "out")
        assert r.wait(90) == 0, r.output()
        listing = r.named("listing")[0]
        assert listing["notes"] == ["door code 1234"]
        want = {
            "top.bin": tree / "top.bin",
            "folder/deep/data.bin": tree / "folder" / "deep" / "data.bin",
            "folder/empty.txt": tree / "folder" / "empty.txt",
            "folder/résumé ✓.txt": tree / "folder" / "résumé ✓.txt",
        }
        assert sorted(f["path"] for f in listing["files"]) == sorted(want)
        got = saved(r)
        for rel, src in want.items():
            dest = tmp_path / "out" / rel
            assert sha256_file(dest) == sha256_file(src) == got[rel]["sha256"], rel
        assert not list((tmp_path / "out").rglob("*.pea-part"))
        # --once: the sharer stops by itself once a receiver has everything, verified.
        assert sender.wait(30) == 0, sender.output()
        verified = [e for e in sender.named("uploaded") if e["verified"]]
        assert len(verified) == len(want)
    # Each end told its node how the connection went, as the web client does: two reports.
    deadline = time.monotonic() + 10
    while connections_counted(cluster) - counted < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert connections_counted(cluster) - counted == 2


def test_an_interrupted_receive_resumes_when_run_again(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    """`pea receive` killed mid-file keeps what it verified; the same command again asks
    the sharer for the rest only (a `get` from the last verified block) and completes."""
    node_a, _ = cluster
    src, out = big_file(tmp_path, 12 * MiB + 7), tmp_path / "out"
    with downloading(node_a.url, src, out, past=3 * MiB) as (sender, link, r):
        r.kill()  # no goodbye, as a crash or a closed laptop
        part = out / "big.bin.pea-part"
        kept = part.stat().st_size
        assert kept >= 2 * MiB and not (out / "big.bin").exists()
        again = receive(link, "--out", out)
        assert again.wait(120) == 0, again.output()
        resumed = again.named("resumed")[0]
        assert resumed["bytes"] % MiB == 0 and resumed["bytes"] >= 2 * MiB
        assert sha256_file(out / "big.bin") == sha256_file(src)
        assert sorted(p.name for p in out.iterdir()) == ["big.bin"]
        # The sharer sent the second run only what was missing (whole blocks from there).
        first_of_second = [e for e in sender.named("upload") if e["receiver"] == 2]
        assert first_of_second[0]["bytes"] >= resumed["bytes"]


def test_a_lost_connection_is_made_again_and_the_download_goes_on(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    """The sharer freezes mid-file (SIGSTOP, as a laptop lid closed) long enough for both
    sides to call the connection lost; once it wakes, the receiver's hello gets a new
    connection and the same run finishes the file from its last verified block."""
    node_a, _ = cluster
    src, out = big_file(tmp_path, 10 * MiB + 3), tmp_path / "out"
    with downloading(node_a.url, src, out, past=2 * MiB) as (sender, _, r):
        os.kill(sender.pid, SIGSTOP)
        try:
            r.wait_event(
                lambda e: e.get("event") == "warning" and e["code"] == "reconnecting",
                30,
                "the receiver noticing the loss",
            )
        finally:
            os.kill(sender.pid, SIGCONT)
        assert r.wait(150) == 0, r.output()
        assert sha256_file(out / "big.bin") == sha256_file(src)
        assert len(r.named("connected")) == 2
