"""`pea receive` against what can go wrong: a tampering server (an altered SDP stops it
with the tampering exit code), a hostile sharer (its paths never lead outside --out),
files that exist already, several receivers at once, standard input and output."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.relay import forge_fingerprint, tampering_relay
from tests.support.cli import receive, saved, send
from tests.support.pages import MiB, sha256_file, write_random
from tests.support.procs import PeaNode, inherited_env, pea_exe

pytestmark = pytest.mark.timeout(180)

TAMPERED = 5


def relay_link(link: str, relay_url: str) -> str:
    return relay_url + "/" + link[link.index("#") :]


@pytest.mark.parametrize("direction", ["offer", "answer"])
def test_an_altered_sdp_stops_the_receiver_as_tampering(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path, direction: str
) -> None:
    """The server (here a relay in front of node B) swaps the DTLS fingerprint in the
    sharer's offer, or in the receiver's answer: nothing is downloaded, exit code 5."""
    node_a, node_b = cluster
    src = tmp_path / "secret.txt"
    src.write_text("not for the man in the middle\n")
    sender, link = send(node_a.url, src)
    alter: dict[str, Any] = (
        {"to_browser": forge_fingerprint}
        if direction == "offer"
        else {"to_server": forge_fingerprint}
    )
    try:
        with tampering_relay(node_b.url, **alter) as relay:
            r = receive(relay_link(link, relay.url), "--out", tmp_path / "out")
            assert r.wait(60) == TAMPERED, r.output()
            assert relay.altered >= 1
        err = r.named("error")[0]
        assert err["code"] == "tampered" and "tampered" in err["message"]
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
        if direction == "answer":
            # The sharer saw the altered answer itself, and refused that receiver.
            sender.wait_event(
                lambda e: e.get("event") == "receiver" and e["state"] == "tampered",
                10,
                "the sharer reporting the tampering",
            )
    finally:
        sender.kill()


# -- a hostile sharer ---------------------------------------------------------------------

HOSTILE = {
    "../../escape-1.txt": b"one",
    "/tmp/absolute-escape.txt": b"two",
    "C:\\Windows\\escape-3.txt": b"three",
    "..\\..\\escape-4.txt": b"four",
    "nul\x00byte.txt": b"five",
    "CON": b"six",
}


@contextlib.contextmanager
def hostile_sharer(node_url: str, files: dict[str, bytes], workdir: Path) -> Iterator[str]:
    """A sharer built from the CLI's own parts whose manifest names hostile paths (a
    modified client can say anything): yields its link."""
    from pea.peer.files import Catalogue
    from pea.peer.progress import JsonReporter
    from pea.peer.rtc import allow_loopback
    from pea.peer.share import Sharer

    loop = asyncio.new_event_loop()
    link: list[str] = []
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    errors: list[BaseException] = []

    async def main() -> None:
        allow_loopback(True)
        catalogue = Catalogue()
        for i, (path, data) in enumerate(files.items()):
            src = workdir / f"src-{i}"
            src.write_bytes(data)
            catalogue.add_paths([str(src)], "")
            f = catalogue.files[str(i + 1)]
            f.path, f.name = path, path.replace("\\", "/").rsplit("/", 1)[-1]
        sharer = Sharer(catalogue, node_url, JsonReporter(io.StringIO()))
        stop.append(asyncio.Event())
        runner = asyncio.create_task(sharer.run())
        link.append(sharer.share.url)
        ready.set()
        await stop[0].wait()
        runner.cancel()
        await sharer.close()
        catalogue.close()

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as e:
            errors.append(e)
            ready.set()
        finally:
            loop.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(20) and not errors, errors
    try:
        yield link[0]
    finally:
        if stop:
            loop.call_soon_threadsafe(stop[0].set)
        t.join(15)


def test_hostile_paths_never_leave_the_out_folder(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    node_a, node_b = cluster
    work = tmp_path / "a" / "b"  # deep enough that "../../" still lands inside tmp_path
    work.mkdir(parents=True)
    out = work / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sources = tmp_path / "sources"
    sources.mkdir()
    # Planted: nothing is written through it (tests/unit/test_peer_paths.py has the rest).
    (out / "link").symlink_to(elsewhere)
    before = {p for p in tmp_path.rglob("*") if out not in p.parents}
    with hostile_sharer(node_a.url, HOSTILE, sources) as link:
        r = receive(node_b.url + "/" + link[link.index("#") :], "--out", out)
        rc = r.wait(90)
    after = {p for p in tmp_path.rglob("*") if out not in p.parents and sources not in p.parents}
    assert after - before == set(), f"written outside --out: {after - before}"
    assert list(elsewhere.iterdir()) == []
    assert not Path("/tmp/absolute-escape.txt").exists()
    written = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert written == {
        "escape-1.txt": b"one",
        "tmp/absolute-escape.txt": b"two",
        "C_/Windows/escape-3.txt": b"three",
        "escape-4.txt": b"four",
        "nul_byte.txt": b"five",
        "_CON": b"six",
    }
    assert rc == 0, r.output()


def test_existing_files_are_kept_unless_overwrite(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    node_a, _ = cluster
    src = tmp_path / "report.txt"
    src.write_text("new version\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.txt").write_text("mine, keep it\n")
    sender, link = send(node_a.url, src)
    try:
        r = receive(link, "--out", out)
        assert r.wait(60) == 1, r.output()
        assert "exists" in r.named("error")[0]["message"]
        assert (out / "report.txt").read_text() == "mine, keep it\n"
        r = receive(link, "--out", out, "--overwrite")
        assert r.wait(60) == 0, r.output()
        assert (out / "report.txt").read_text() == "new version\n"
    finally:
        sender.kill()


def test_several_receivers_at_once(cluster: tuple[PeaNode, PeaNode], tmp_path: Path) -> None:
    node_a, node_b = cluster
    src = tmp_path / "shared.bin"
    write_random(src, 6 * MiB)
    sender, link = send(node_a.url, src)
    rs = []
    try:
        for i, node in enumerate((node_a, node_b, node_b)):
            fragment = link[link.index("#") :]
            rs.append(receive(node.url + "/" + fragment, "--out", tmp_path / f"out{i}"))
        for r in rs:
            assert r.wait(120) == 0, r.output()
        for i in range(len(rs)):
            assert sha256_file(tmp_path / f"out{i}" / "shared.bin") == sha256_file(src)
        uploaded = {e["receiver"] for e in sender.named("uploaded") if e["verified"]}
        assert uploaded == {1, 2, 3}
        # Served side by side: every receiver was connected before the first finished.
        kinds = [
            (e["event"], e.get("receiver"))
            for e in sender.events
            if e.get("event") in ("uploaded", "receiver")
            and e.get("state", "connected") == "connected"
        ]
        first_done = next(i for i, k in enumerate(kinds) if k[0] == "uploaded")
        assert {r for ev, r in kinds[:first_done] if ev == "receiver"} == {1, 2, 3}
    finally:
        # A receiver still running after a failure must not outlive the test
        # (its process, collected later, fails the next test's setup).
        for p in (sender, *rs):
            p.kill()


def test_standard_input_to_standard_output(
    cluster: tuple[PeaNode, PeaNode], tmp_path: Path
) -> None:
    """`tar c dir | pea send -` and `pea receive LINK - > file`."""
    node_a, node_b = cluster
    data = os.urandom(300_000)
    send_p = subprocess.Popen(
        [pea_exe(), "send", "--server", node_a.url, "--json", "--name", "backup.tar", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=inherited_env(),
    )
    try:
        assert send_p.stdin is not None and send_p.stdout is not None
        send_p.stdin.write(data)
        send_p.stdin.close()
        link = json.loads(send_p.stdout.readline())["link"]
        r = receive(node_b.url + "/" + link[link.index("#") :], "-")
        assert r.wait(60) == 0, r.output()
        assert r.data == data
        assert saved(r)["backup.tar"]["dest"] == "-"
    finally:
        send_p.kill()
        send_p.wait(5)
        if send_p.stdout is not None:
            send_p.stdout.close()
