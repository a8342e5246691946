"""`pea receive`: joins the link's room, connects to the peer whose offer is signed
by the key the link commits to, reads the manifest and downloads over `get` channels
(docs/transfer-protocol.md §2-3), streaming each file to disk and verifying it."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer

from pea.peer.auth import SignalAuth
from pea.peer.channel import ChannelClosed, Overrun
from pea.peer.exits import Exit, PeerError
from pea.peer.link import ShareLink
from pea.peer.paths import PART_SUFFIX, Names, UnsafePath, exists_inside, open_inside, rename_inside
from pea.peer.progress import Reporter
from pea.peer.rtc import LinkFailed, PeerLink, ice_servers
from pea.peer.signalling import Frame, Signalling

log = logging.getLogger("pea.peer")

ACK_EVERY = 1 << 20
SHARER_WAIT = 30.0  # nobody offers the link's files this long: the sharer is not there
TAMPER_GRACE = 5.0  # after a forged sharer signal, a valid offer still has this long to win
MANIFEST_WAIT = 15.0
MANIFEST_QUIET = 0.3  # the sharer sends its whole manifest at once: a pause ends it


@dataclass(frozen=True)
class Entry:
    id: str
    name: str
    path: str
    size: int


def read_add(m: dict[str, Any]) -> tuple[list[Entry], list[str]]:
    """The entries of an `add` that have the documented shape (hostile input)."""
    files: list[Entry] = []
    notes: list[str] = []
    raw_files = m.get("files")
    for f in raw_files if isinstance(raw_files, list) else []:
        if not isinstance(f, dict) or not isinstance(f.get("id"), str):
            continue
        size, name = f.get("size"), f.get("name")
        if not isinstance(name, str) or type(size) is not int or not 0 <= size < 2**53:
            continue
        path = f.get("path")
        files.append(Entry(f["id"], name, path if isinstance(path, str) else name, size))
    raw_notes = m.get("notes")
    for n in raw_notes if isinstance(raw_notes, list) else []:
        if isinstance(n, dict) and isinstance(n.get("text"), str):
            notes.append(n["text"])
    return files, notes


class Fetcher:
    def __init__(
        self,
        share: ShareLink,
        report: Reporter,
        *,
        out: Path | None,
        only: list[str],
        overwrite: bool,
        list_only: bool = False,
        ice_override: list[RTCIceServer] | None = None,
        wait: float = SHARER_WAIT,
    ) -> None:
        self.share = share
        self.report = report
        self.out = out
        self.only = only
        self.overwrite = overwrite
        self.list_only = list_only
        self.ice_override = ice_override
        self.wait = wait
        self.auth = SignalAuth(share.secret, commit=share.commit)
        self.sig = Signalling(share.ws_url, self.auth.room, self.on_frame)
        self.link: PeerLink | None = None
        self.sharer: str | None = None  # peer id of the verified sharer
        self.connected = False
        self.tampered_at: float | None = None
        self.refused = False
        self.sharer_gone = False
        self.impostor_warned = False
        self.files: list[Entry] = []
        self.notes: list[str] = []

    @property
    def servers(self) -> list[RTCIceServer]:
        if self.ice_override is not None:
            return self.ice_override
        return ice_servers(self.sig.config.get("ice_servers"))

    # -- signalling -------------------------------------------------------------------

    async def _hello(self, peer: str) -> None:
        if not self.connected and isinstance(peer, str):
            await self._send(peer, "hello", "receiver")

    async def _send(self, to: str, kind: str, payload: str) -> None:
        await self.sig.signal(to, self.auth.seal(kind, self.sig.peer, to, payload))

    async def on_frame(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "peer-joined":
            await self._hello(frame.get("peer"))  # type: ignore[arg-type]
        elif kind == "rejoined":
            for p in frame.get("peers") or []:
                if isinstance(p, dict):
                    await self._hello(p.get("peer"))  # type: ignore[arg-type]
        elif kind == "peer-left" and frame.get("peer") == self.sharer:
            asyncio.get_running_loop().create_task(self._sharer_left())
        elif kind == "signal":
            await self.on_signal(frame.get("from"), frame.get("data"))

    async def _sharer_left(self) -> None:
        link = self.link
        if link is not None and self.connected and await link.probe(3.0):
            return  # still answering directly: the server's word is not enough
        self.sharer_gone = True
        if link is not None:
            await link.close()

    async def on_signal(self, sender: Any, data: Any) -> None:
        opened = self.auth.open(data, sender, self.sig.peer)
        if not opened.ok:
            from_sharer = opened.claims_sharer or (sender is not None and sender == self.sharer)
            if opened.why in ("malformed", "bad-mac") and from_sharer and isinstance(sender, str):
                await self._send(sender, "refuse", f"bad signature on {opened.kind}")
                if self.connected:
                    return  # a verified direct connection does not need the server any more
                self.report.emit(
                    "warning",
                    code="tampered",
                    message="A signal from the sharer was altered on the way (it did not verify).",
                )
                self.tampered_at = asyncio.get_running_loop().time()
                if self.link is not None and self.link.remote == sender:
                    await self.link.close()  # that attempt is given up
                    self.link = None
            elif opened.why == "impostor" and not self.impostor_warned:
                self.impostor_warned = True
                self.report.emit(
                    "warning",
                    code="impostor",
                    message="Someone else who has this link tried to pose as the sharer; "
                    "pea ignored them.",
                )
            return
        assert isinstance(sender, str)
        if opened.kind == "offer":
            if self.connected:
                return
            if self.link is not None:
                await self.link.close()
            self.sharer = sender

            async def send(kind: str, payload: str) -> None:
                await self._send(sender, kind, payload)

            self.link = PeerLink(sender, "answerer", self.servers, send)
            try:
                await self.link.handle("offer", opened.payload)
            except Exception as e:
                log.info("could not answer the offer: %r", e)
                await self.link.close()
        elif opened.kind == "candidate" and self.link is not None and self.link.remote == sender:
            await self.link.handle("candidate", opened.payload)
        elif opened.kind == "refuse" and sender == self.sharer and not self.connected:
            # The sharer says our answer reached it altered; it gave that connection up.
            self.refused = True
            self.tampered_at = asyncio.get_running_loop().time()
            if self.link is not None:
                await self.link.close()
                self.link = None

    # -- connecting -------------------------------------------------------------------

    async def _connect(self) -> PeerLink:
        welcome = await self.sig.start()
        for p in welcome.get("peers") or []:
            if isinstance(p, dict):
                await self._hello(p.get("peer"))  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            if self.sig.closed.is_set():
                raise self.sig.failure or PeerError(
                    Exit.SERVER_UNREACHABLE, "lost the connection to the pea server"
                )
            link = self.link
            if link is not None and link.connected.is_set():
                self.connected = True
                return link
            if link is not None and link.ended.is_set() and link.reason != "closed":
                why = {
                    "timeout": "no direct connection to the sharer within 20 s",
                    "ice-failed": "no direct path to the sharer",
                }.get(link.reason, f"the connection to the sharer failed ({link.reason})")
                raise PeerError(
                    Exit.NO_DIRECT_CONNECTION,
                    f"{why}: a strict NAT or firewall is in the way (pea does not relay files)",
                )
            now = loop.time()
            if (
                self.tampered_at is not None
                and now - self.tampered_at > TAMPER_GRACE
                and (link is None or not link.have_remote or link.ended.is_set())
            ):
                raise PeerError(
                    Exit.TAMPERED,
                    "the connection was tampered with: "
                    + (
                        "the sharer received our answer altered"
                        if self.refused
                        else "the sharer's offer was altered on the way"
                    )
                    + " (by the server or the network); nothing was downloaded",
                )
            if self.sharer_gone:
                raise PeerError(Exit.SHARER_LEFT, "the sharer left")
            if link is None and now - start > self.wait:
                raise PeerError(
                    Exit.SHARER_LEFT,
                    "the sharer is not there: nobody offered this link's files "
                    f"within {self.wait:g} s",
                )
            await asyncio.sleep(0.05)

    async def _manifest(self, link: PeerLink) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MANIFEST_WAIT
        got = False
        while True:
            timeout = MANIFEST_QUIET if got else deadline - loop.time()
            if timeout <= 0:
                raise PeerError(Exit.SHARER_LEFT, "the sharer sent no list of files")
            try:
                m = await asyncio.wait_for(link.inbox.get(), timeout)
            except TimeoutError:
                if got:
                    return
                continue
            if m.get("t") == "add":
                files, notes = read_add(m)
                self.files += files
                self.notes += notes
                got = True

    # -- downloading ------------------------------------------------------------------

    async def run(self) -> None:
        try:
            link = await self._connect()
            self.report.emit("connected")
            await self._manifest(link)
            self.report.emit(
                "listing",
                files=[{"id": f.id, "path": f.path, "size": f.size} for f in self.files],
                notes=self.notes,
            )
            if self.list_only:
                return
            chosen = self._select()
            targets = self._targets(chosen)
            for f, dest in zip(chosen, targets, strict=True):
                await self._download(link, f, dest)
        finally:
            if self.link is not None:
                await self.link.close()
            await self.sig.close()

    def _select(self) -> list[Entry]:
        if not self.only:
            chosen = list(self.files)
        else:
            chosen = [
                f
                for f in self.files
                if any(
                    fnmatch.fnmatchcase(f.path, p) or fnmatch.fnmatchcase(f.name, p)
                    for p in self.only
                )
            ]
        if not chosen:
            what = "matches " + " ".join(self.only) if self.only else "is shared"
            raise PeerError(Exit.FAILED, f"nothing {what}")
        if self.out is None and len(chosen) != 1:
            raise PeerError(
                Exit.USAGE,
                f"'-' writes one file to standard output, but {len(chosen)} are chosen: use --only",
            )
        return chosen

    def _targets(self, chosen: list[Entry]) -> list[str]:
        if self.out is None:
            return ["-"] * len(chosen)
        names = Names()
        targets = [names.take(f.path) for f in chosen]
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.overwrite:
            for t in targets:
                if exists_inside(self.out, t):
                    raise PeerError(
                        Exit.FAILED, f"{self.out / t} exists already (--overwrite replaces it)"
                    )
        return targets

    async def _download(self, link: PeerLink, f: Entry, dest: str) -> None:
        to_stdout = dest == "-"
        fd = -1
        part = dest + PART_SUFFIX
        if not to_stdout:
            assert self.out is not None
            try:
                fd = open_inside(self.out, part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            except (UnsafePath, OSError) as e:
                raise PeerError(Exit.FAILED, f"cannot write {self.out / dest}: {e}") from None
        ch = link.create_channel("get")
        h = hashlib.sha256()
        received = acked = 0
        shown = f.path
        try:
            try:
                await ch.wait_open(20)
                ch.send_json({"t": "get", "file": f.id})
                while True:
                    m = await ch.recv()
                    if isinstance(m, bytes):
                        received += len(m)
                        if received > f.size:
                            raise PeerError(
                                Exit.VERIFICATION_FAILED,
                                f"{shown}: the sharer sent more than its {f.size} bytes",
                            )
                        h.update(m)
                        if to_stdout:
                            sys.stdout.buffer.write(m)
                        else:
                            _write_all(fd, m)
                        if received - acked >= ACK_EVERY:
                            acked = received
                            ch.send_json({"t": "ack", "bytes": acked})
                        self.report.emit("download", path=shown, bytes=received, size=f.size)
                        continue
                    if m["t"] == "end":
                        digest = h.hexdigest()
                        if received != f.size or m.get("sha256") != digest:
                            ch.send_json({"t": "bad", "sha256": digest})
                            raise PeerError(
                                Exit.VERIFICATION_FAILED,
                                f"{shown}: verification failed (got {received} of {f.size} bytes, "
                                f"SHA-256 {digest[:16]}…, not what the sharer announced); "
                                "the partial file was deleted",
                            )
                        ch.send_json({"t": "ok", "sha256": digest})
                        break
                    if m["t"] == "error":
                        code = m.get("code") if isinstance(m.get("code"), str) else "error"
                        raise PeerError(Exit.FAILED, f"{shown}: the sharer refused: {code}")
            except Overrun:
                raise PeerError(
                    Exit.FAILED, f"{shown}: the sharer flooded the channel (ignored flow control)"
                ) from None
            except ChannelClosed:
                if self.sharer_gone or link.ended.is_set():
                    raise PeerError(
                        Exit.SHARER_LEFT,
                        f"{shown}: the sharer left after {received} of {f.size} bytes "
                        "(run the same command again to resume)",
                    ) from None
                raise PeerError(
                    Exit.SHARER_LEFT, f"{shown}: the sharer closed the download"
                ) from None
        except BaseException as e:
            if fd >= 0:
                os.close(fd)
                fd = -1
                # Bytes that failed verification are discarded; a download cut short
                # (sharer gone, Ctrl-C) keeps its verified-so-far part for a resume.
                if isinstance(e, PeerError) and e.exit in (Exit.VERIFICATION_FAILED, Exit.FAILED):
                    assert self.out is not None
                    with contextlib.suppress(OSError):
                        os.unlink(self.out / part)
            raise
        finally:
            ch.close()
        # Closed on both sides means our `ok` reached the sharer (SCTP sends a channel's
        # queued messages before its reset); leaving earlier could lose it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ch.closed.wait(), 2)
        if to_stdout:
            sys.stdout.buffer.flush()
        else:
            assert self.out is not None
            os.fsync(fd)
            os.close(fd)
            rename_inside(self.out, part, dest)
        self.report.emit("download", path=shown, bytes=f.size, size=f.size)
        self.report.emit(
            "saved",
            path=f.path,
            dest="-" if self.out is None else str(self.out / dest),
            size=f.size,
            sha256=h.hexdigest(),
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


__all__ = ["Fetcher", "LinkFailed"]
