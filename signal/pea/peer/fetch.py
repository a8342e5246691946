"""`pea receive`: joins the link's room, connects to the peer whose offer is signed
by the key the link commits to, reads the manifest and downloads over `get` channels
(docs/transfer-protocol.md §2-3), streaming each file to disk and verifying it."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import RTCIceServer

from pea.peer.auth import SignalAuth
from pea.peer.channel import Channel, ChannelClosed, Overrun
from pea.peer.exits import Exit, PeerError
from pea.peer.link import VERSION, ShareLink
from pea.peer.paths import PART_SUFFIX, Names, UnsafePath, exists_inside, open_inside, rename_inside
from pea.peer.progress import Reporter
from pea.peer.rtc import CONNECT_TIMEOUT, LinkFailed, PeerLink, ice_servers
from pea.peer.signalling import Frame, Signalling

log = logging.getLogger("pea.peer")

BLOCK = 1 << 20  # fixed by the protocol (§3.2)
MAX_REFETCH = 3
RESUME_WINDOW = 120.0  # a lost connection may come back within this long (§3.5)
HELLO_EVERY = 3.0  # how often a receiver that lost its sharer says hello again
STATE_SUFFIX = ".pea-part.json"
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
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.share = share
        self.report = report
        self.out = out
        self.only = only
        self.overwrite = overwrite
        self.list_only = list_only
        self.ice_override = ice_override
        self.wait = wait
        self.connect_timeout = connect_timeout
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

            self.link = PeerLink(
                sender,
                "answerer",
                self.servers,
                send,
                report=self.sig.outcome,
                connect_timeout=self.connect_timeout,
            )
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

    async def _connect(self, again: bool = False) -> PeerLink:
        """The first connection to the sharer, or (`again`) a new one after a loss."""
        if not again:
            welcome = await self.sig.start()
            for p in welcome.get("peers") or []:
                if isinstance(p, dict):
                    await self._hello(p.get("peer"))  # type: ignore[arg-type]
        loop = asyncio.get_running_loop()
        start = last_hello = loop.time()
        wait = RESUME_WINDOW if again else self.wait
        while True:
            if again and self.sharer is not None and loop.time() - last_hello >= HELLO_EVERY:
                last_hello = loop.time()
                await self._hello(self.sharer)
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
                    "timeout": "no direct connection to the sharer within "
                    f"{self.connect_timeout:g} s",
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
            if link is None and now - start > wait:
                raise PeerError(
                    Exit.SHARER_LEFT,
                    f"could not reconnect to the sharer within {wait:g} s "
                    "(run the same command again to resume)"
                    if again
                    else "the sharer is not there: nobody offered this link's files "
                    f"within {wait:g} s",
                )
            await asyncio.sleep(0.05)

    async def _manifest(self, link: PeerLink) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MANIFEST_WAIT
        got = hello = False
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
            if not hello:
                if m.get("t") != "hello" or m.get("v") != VERSION:
                    raise PeerError(
                        Exit.FAILED,
                        "the sharer's page runs another version of pea; "
                        "ask them to reload it and share again",
                    )
                hello = True
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
                while True:
                    try:
                        await self._download(link, f, dest)
                        break
                    except PeerError as e:
                        if (
                            e.exit != Exit.SHARER_LEFT
                            or self.sharer_gone
                            or not link.ended.is_set()
                        ):
                            raise
                    link, f = await self._reconnect(f)
        finally:
            if self.link is not None:
                await self.link.close()
            await self.sig.close()

    async def _reconnect(self, f: Entry) -> tuple[PeerLink, Entry]:
        """The connection was lost mid-download (§3.5): ask the sharer for a new one, read
        its manifest again and find the same file; the download resumes from disk."""
        self.report.emit(
            "warning",
            code="reconnecting",
            message=f"lost the connection to the sharer; reconnecting (up to {RESUME_WINDOW:g} s)",
        )
        old, self.link, self.connected = self.link, None, False
        if old is not None:
            await old.close()
        link = await self._connect(again=True)
        self.report.emit("connected")
        self.files, self.notes = [], []
        await self._manifest(link)
        same = [x for x in self.files if (x.id, x.path, x.size) == (f.id, f.path, f.size)]
        same = same or [x for x in self.files if (x.path, x.size) == (f.path, f.size)]
        if not same:
            raise PeerError(Exit.FAILED, f"{f.path}: the sharer no longer offers it")
        return link, same[0]

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
        d = Download(f, None if to_stdout else self.out, dest, self.report)
        try:
            d.open()
            while not await d.attempt(link):
                pass  # a damaged block: fetched again from the last verified one
        except ChannelClosed:
            d.close(keep=True)
            if self.sharer_gone or link.ended.is_set():
                raise PeerError(
                    Exit.SHARER_LEFT,
                    f"{f.path}: the sharer left after {d.verified} of {f.size} bytes "
                    "(run the same command again to resume)",
                ) from None
            raise PeerError(Exit.SHARER_LEFT, f"{f.path}: the sharer closed the download") from None
        except Overrun:
            d.close(keep=False)
            raise PeerError(
                Exit.FAILED, f"{f.path}: the sharer flooded the channel (ignored flow control)"
            ) from None
        except PeerError as e:
            d.close(keep=e.exit not in (Exit.VERIFICATION_FAILED, Exit.FAILED))
            raise
        except BaseException:
            d.close(keep=True)  # Ctrl-C: what is verified stays for a resume
            raise
        d.finish()


class Download:
    """One file (§3.3-3.5): `get` from the verified offset, each block checked against
    its hash before it is written, the whole file against `meta` and `end`. What is
    verified goes to DIR/<name>.pea-part, beside a small state file naming the file's
    SHA-256, so that running the command again resumes at the last verified block."""

    def __init__(self, f: Entry, out: Path | None, dest: str, report: Reporter) -> None:
        self.f = f
        self.out = out
        self.dest = dest
        self.report = report
        self.part = dest + PART_SUFFIX
        self.state = dest + STATE_SUFFIX
        self.fd = -1
        self.verified = 0  # V: every byte before it verified and written
        self.whole = hashlib.sha256()
        self.sha256: str | None = None  # from the first `meta`, kept across resumes
        self.refetches: dict[int, int] = {}

    # -- the partial file ------------------------------------------------------------

    def open(self) -> None:
        if self.out is None:
            return
        try:
            self.fd = open_inside(self.out, self.part, os.O_RDWR | os.O_CREAT)
        except (UnsafePath, OSError) as e:
            raise PeerError(Exit.FAILED, f"cannot write {self.out / self.dest}: {e}") from None
        kept = self._read_state()
        have = os.fstat(self.fd).st_size
        if kept is not None and have > 0:
            # Only whole verified blocks count (a crash may have cut a write short).
            start = self.f.size if have >= self.f.size else have - have % BLOCK
            self._rehash(start)
            self.verified, self.sha256 = start, kept
            self.report.emit("resumed", path=self.f.path, bytes=start, size=self.f.size)
        self._truncate(self.verified)

    def _read_state(self) -> str | None:
        assert self.out is not None
        try:
            fd = open_inside(self.out, self.state, os.O_RDONLY)
        except (UnsafePath, OSError):
            return None
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(4096)
        try:
            st = json.loads(raw)
        except ValueError:
            return None
        ok = (
            isinstance(st, dict) and st.get("size") == self.f.size and st.get("path") == self.f.path
        )
        sha = st.get("sha256") if ok else None
        return sha if isinstance(sha, str) and len(sha) == 64 else None

    def _write_state(self) -> None:
        if self.out is None:
            return
        fd = open_inside(self.out, self.state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w") as fh:
            json.dump({"path": self.f.path, "size": self.f.size, "sha256": self.sha256}, fh)

    def _rehash(self, upto: int) -> None:
        os.lseek(self.fd, 0, os.SEEK_SET)
        left = upto
        while left:
            data = os.read(self.fd, min(left, 4 << 20))
            if not data:
                raise PeerError(Exit.FAILED, f"{self.part} changed while it was read")
            self.whole.update(data)
            left -= len(data)

    def _truncate(self, at: int) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, at)
            os.lseek(self.fd, at, os.SEEK_SET)

    def _restart(self) -> None:
        """The sharer's file is not the one our partial file was part of: start over."""
        self.verified, self.whole, self.sha256 = 0, hashlib.sha256(), None
        self._truncate(0)

    def close(self, keep: bool) -> None:
        if self.fd < 0:
            return
        os.close(self.fd)
        self.fd = -1
        if not keep and self.out is not None:
            for name in (self.part, self.state):
                with contextlib.suppress(OSError):
                    os.unlink(self.out / name)

    def finish(self) -> None:
        if self.out is None:
            sys.stdout.buffer.flush()
            where = "-"
        else:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            rename_inside(self.out, self.part, self.dest)
            with contextlib.suppress(OSError):
                os.unlink(self.out / self.state)
            where = str(self.out / self.dest)
        size = self.f.size
        self.report.emit("download", path=self.f.path, bytes=size, size=size)
        self.report.emit(
            "saved", path=self.f.path, dest=where, size=size, sha256=self.whole.hexdigest()
        )

    def _write(self, data: bytes) -> None:
        if self.fd < 0:
            sys.stdout.buffer.write(data)
        else:
            _write_all(self.fd, data)

    # -- one `get` channel -----------------------------------------------------------

    def _protocol(self, what: str) -> PeerError:
        return PeerError(
            Exit.VERIFICATION_FAILED, f"{self.f.path}: the sharer broke the protocol ({what})"
        )

    async def attempt(self, link: PeerLink) -> bool:
        """One `get`; True when the file is complete and verified, False to fetch again."""
        f = self.f
        ch = link.create_channel("get")
        try:
            await ch.wait_open(20)
            ch.send_json({"t": "get", "file": f.id, "from": self.verified})
            m = await ch.recv()
            if isinstance(m, dict) and m["t"] == "error":
                raise _refused(f, m)
            if not isinstance(m, dict) or m["t"] != "meta":
                raise self._protocol("no meta first")
            if m.get("size") != f.size or m.get("block") != BLOCK or m.get("from") != self.verified:
                raise self._protocol("meta does not match the request")
            sha = m.get("sha256")
            if not isinstance(sha, str):
                raise self._protocol("meta has no sha256")
            if self.sha256 is not None and sha != self.sha256:
                # Resuming, but the sharer's file changed since: start over.
                self.report.emit(
                    "warning",
                    code="changed",
                    message=f"{f.path}: the sharer's file changed since the partial download; "
                    "starting it again",
                )
                self._restart()
                return False
            self.sha256 = sha
            self._write_state()
            return await self._blocks(ch, link)
        finally:
            ch.close()
            # Closed on both sides means our last message reached the sharer (SCTP sends
            # a channel's queued messages before its reset); leaving earlier could lose it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ch.closed.wait(), 2)

    async def _blocks(self, ch: Channel, link: PeerLink) -> bool:
        f = self.f
        buf = bytearray()
        want: str | None = None  # the hash of the block being received
        while True:
            m = await ch.recv()
            # recv() does not suspend while messages are queued: give the heartbeat and
            # the socket reader their turn, or a busy receiver looks dead to the sharer.
            await asyncio.sleep(0)
            if isinstance(m, bytes):
                if want is None:
                    raise self._protocol("bytes with no block announced")
                buf += m
                length = min(BLOCK, f.size - self.verified)
                if len(buf) > length:
                    raise self._protocol("more bytes than the block holds")
                if len(buf) < length:
                    self.report.emit(
                        "download", path=f.path, bytes=self.verified + len(buf), size=f.size
                    )
                    continue
                i = self.verified // BLOCK
                if hashlib.sha256(buf).hexdigest() != want:
                    self.refetches[i] = self.refetches.get(i, 0) + 1
                    if self.refetches[i] > MAX_REFETCH:
                        raise PeerError(
                            Exit.VERIFICATION_FAILED,
                            f"{f.path}: block {i} failed its check four times: the sharer's "
                            "file is changing or its disk is failing",
                        )
                    ch.send_json({"t": "cancel"})
                    return False
                self._write(bytes(buf))
                self.whole.update(buf)
                self.verified += len(buf)
                buf.clear()
                want = None
                ch.send_json({"t": "ack", "bytes": self.verified})
                self.report.emit("download", path=f.path, bytes=self.verified, size=f.size)
                continue
            t = m["t"]
            if t == "block":
                index, sha = m.get("i"), m.get("sha256")
                if want is not None or index != self.verified // BLOCK or self.verified >= f.size:
                    raise self._protocol("a block out of order")
                if not isinstance(sha, str):
                    raise self._protocol("a block with no sha256")
                want = sha
            elif t == "end":
                digest = self.whole.hexdigest()
                if (
                    want is not None
                    or self.verified != f.size
                    or not (m.get("sha256") == self.sha256 == digest)
                ):
                    ch.send_json({"t": "bad", "sha256": digest})
                    raise PeerError(
                        Exit.VERIFICATION_FAILED,
                        f"{f.path}: verification failed (got {self.verified} of {f.size} bytes, "
                        f"SHA-256 {digest[:16]}…, not what the sharer announced); "
                        "the partial file was deleted",
                    )
                ch.send_json({"t": "ok", "sha256": digest})
                return True
            elif t == "error":
                raise _refused(f, m)


def _refused(f: Entry, m: dict[str, Any]) -> PeerError:
    code = m.get("code") if isinstance(m.get("code"), str) else "error"
    return PeerError(Exit.FAILED, f"{f.path}: the sharer refused: {code}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


__all__ = ["Fetcher", "LinkFailed"]
