"""`pea send`: the sharer. Makes the share (secret, Ed25519 key, link), joins the
room, offers a connection to every receiver that comes, sends the manifest on
`control` and serves each `get` channel (docs/transfer-protocol.md §3)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCIceServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pea.peer.auth import SignalAuth
from pea.peer.channel import Channel, ChannelClosed
from pea.peer.exits import Exit, PeerError
from pea.peer.files import BLOCK, Catalogue, SharedFile
from pea.peer.link import VERSION, ShareLink, new_share
from pea.peer.progress import Reporter
from pea.peer.rtc import CONNECT_TIMEOUT, LinkFailed, PeerLink, ice_servers
from pea.peer.signalling import Frame, Signalling

log = logging.getLogger("pea.peer")

WINDOW = 16 << 20  # unacknowledged bytes per channel (§3.2)
RUNNING = 4  # uploads per receiver at once…
WAITING = 64  # …and channels waiting their turn; beyond that, `busy`
REQUEST_TIMEOUT = 15.0
CONFIRM_TIMEOUT = 120.0


class UploadFailed(Exception):
    pass


@dataclass
class Receiver:
    peer: str
    number: int
    link: PeerLink
    state: str = "connecting"
    running: int = 0
    waiting: int = 0
    slot: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(RUNNING))
    verified: set[str] = field(default_factory=set)


class Sharer:
    def __init__(
        self,
        catalogue: Catalogue,
        server: str,
        report: Reporter,
        *,
        once: bool = False,
        ice_override: list[RTCIceServer] | None = None,
        qr: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.catalogue = catalogue
        self.report = report
        self.once = once
        self.qr = qr
        self.ice_override = ice_override
        self.connect_timeout = connect_timeout
        key = Ed25519PrivateKey.generate()
        self.share: ShareLink = new_share(
            server, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        self.auth = SignalAuth(self.share.secret, key=key)
        self.sig = Signalling(self.share.ws_url, self.auth.room, self.on_frame)
        self.receivers: dict[str, Receiver] = {}
        self.count = 0
        self.finished = asyncio.Event()
        self.tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    @property
    def servers(self) -> list[RTCIceServer]:
        if self.ice_override is not None:
            return self.ice_override
        return ice_servers(self.sig.config.get("ice_servers"))

    async def run(self) -> None:
        await self.sig.start()
        self.report.link(self.share.url, self.qr)
        closed = asyncio.create_task(self.sig.closed.wait())
        done = asyncio.create_task(self.finished.wait())
        try:
            await asyncio.wait([closed, done], return_when="FIRST_COMPLETED")
        finally:
            closed.cancel()
            done.cancel()
        if self.sig.failure is not None and not self.finished.is_set():
            raise self.sig.failure

    async def close(self) -> None:
        for r in self.receivers.values():
            await r.link.close()
        for t in list(self.tasks):
            t.cancel()
        await self.sig.close()

    # -- signalling ----------------------------------------------------------------

    async def on_frame(self, frame: Frame) -> None:
        kind = frame.get("type")
        if kind == "peer-joined" and isinstance(frame.get("peer"), str):
            # Offer at once rather than wait for its hello: one trip through the cluster less.
            # Its hello may have come first (a server that lets it overtake): a second offer
            # would cross the first one's answer and neither connection would be made.
            if not self._busy(frame["peer"]):
                await self.accept(frame["peer"])
        elif kind == "peer-left" and isinstance(frame.get("peer"), str):
            self._spawn(self.on_peer_left(frame["peer"]))
        elif kind == "signal":
            await self.on_signal(frame.get("from"), frame.get("data"))

    async def on_signal(self, sender: Any, data: Any) -> None:
        opened = self.auth.open(data, sender, self.sig.peer)
        r = self.receivers.get(sender) if isinstance(sender, str) else None
        if not opened.ok:
            if opened.why == "impostor":
                self.report.emit(
                    "warning",
                    code="impostor",
                    message="Another peer with this link sent an offer, acting as a sharer; "
                    "receivers ignore it (it cannot sign as this share).",
                )
            elif opened.why in ("malformed", "bad-mac") and isinstance(sender, str):
                await self._send(sender, "refuse", f"bad signature on {opened.kind}")
                if r is not None and r.state == "connected":
                    self.report.emit(
                        "warning",
                        code="tamper-ignored",
                        receiver=r.number,
                        message=f"receiver {r.number}: a signal that did not verify was "
                        "refused; the direct connection, already verified, stays",
                    )
                else:
                    if r is not None:
                        self._set(r, "tampered", "its signals were altered on the way")
                        await r.link.close()
                    else:
                        self.report.emit(
                            "warning",
                            code="tampered",
                            message="a signal from a receiver did not verify (altered on "
                            "the way): that receiver was refused",
                        )
            return
        assert isinstance(sender, str)
        if opened.kind == "hello":
            if not self._busy(sender):  # else usually a duplicate: we offered on peer-joined
                await self.accept(sender)
        elif r is not None and opened.kind == "refuse":
            if r.state == "connected":
                self.report.emit(
                    "warning",
                    code="remote-tamper-ignored",
                    receiver=r.number,
                    message=f"receiver {r.number} saw a forged signal; "
                    "its verified connection stays",
                )
            else:
                self._set(r, "tampered", "it saw our offer altered on the way")
                await r.link.close()
        elif r is not None and opened.kind in ("answer", "candidate"):
            try:
                await r.link.handle(opened.kind, opened.payload)
            except Exception as e:
                self._set(r, "failed", f"could not use its answer: {e}")
                await r.link.close()

    def _busy(self, peer: str) -> bool:
        """A connection with this peer is being made or is up: no new offer."""
        r = self.receivers.get(peer)
        return r is not None and r.state in ("connecting", "connected")

    async def _send(self, to: str, kind: str, payload: str) -> None:
        await self.sig.signal(to, self.auth.seal(kind, self.sig.peer, to, payload))

    def _set(self, r: Receiver, state: str, reason: str = "") -> None:
        r.state = state
        self.report.emit("receiver", receiver=r.number, state=state, reason=reason)

    async def on_peer_left(self, peer: str) -> None:
        r = self.receivers.get(peer)
        if r is None:
            return
        link = r.link
        # A receiver still answering directly keeps its downloads, whatever the server says.
        if r.state == "connected" and await link.probe(3.0):
            return
        if r.link is link and r.state in ("connecting", "connected"):
            self._set(r, "left")
            await link.close()

    # -- one receiver -----------------------------------------------------------------

    async def accept(self, peer: str) -> None:
        old = self.receivers.get(peer)
        if old is not None:
            await old.link.close()

        async def send(kind: str, payload: str) -> None:
            await self._send(peer, kind, payload)

        if old is None:
            self.count += 1
        number = old.number if old is not None else self.count
        link = PeerLink(
            peer,
            "offerer",
            self.servers,
            send,
            report=self.sig.outcome,
            connect_timeout=self.connect_timeout,
        )
        r = Receiver(peer, number, link)
        if old is not None:
            r.verified = old.verified
        link.on_channel = lambda ch: self._on_channel(r, ch)
        self.receivers[peer] = r
        self._set(r, "connecting")
        self._spawn(self._connect(r))

    async def _connect(self, r: Receiver) -> None:
        try:
            await r.link.start_offer()
            await r.link.wait_connected()
        except LinkFailed as e:
            if r.state == "connecting":
                why = {
                    "timeout": f"no direct connection within {self.connect_timeout:g} s",
                    "ice-failed": "no direct path",
                }
                self._set(r, "failed", why.get(e.reason, e.reason))
            return
        except Exception as e:
            self._set(r, "failed", f"could not start a connection: {e}")
            return
        self._set(r, "connected")
        control = r.link.control
        assert control is not None
        try:
            control.send_json({"t": "hello", "v": VERSION, "app": "pea-cli"})
            for m in self.catalogue.manifest():
                control.send_json(m)
        except ChannelClosed:
            return
        await r.link.ended.wait()
        if r.state == "connected":
            self._set(r, "left", "" if r.link.reason == "closed" else r.link.reason)

    def _on_channel(self, r: Receiver, ch: RTCDataChannel) -> None:
        channel = r.link.wrap(ch)
        if ch.label != "get":
            channel.close()
            return
        if r.waiting >= RUNNING + WAITING:
            self._spawn(_refuse_busy(channel))
            return
        self._spawn(self._serve(r, channel))

    async def _serve(self, r: Receiver, channel: Channel) -> None:
        r.waiting += 1
        try:
            async with r.slot:
                up = Upload(channel, self.catalogue, r, self.report)
                try:
                    f = await up.run()
                except (UploadFailed, ChannelClosed, TimeoutError, OSError) as e:
                    log.info("upload to receiver %s ended: %r", r.number, e)
                    return
                finally:
                    channel.close()
                if f is not None:
                    r.verified.add(f.id)
                    if self.once and set(self.catalogue.files) <= r.verified:
                        self.finished.set()
        finally:
            r.waiting -= 1


async def _refuse_busy(channel: Channel) -> None:
    with contextlib.suppress(ChannelClosed):
        await channel.wait_open(10)
        channel.send_json(
            {
                "t": "error",
                "code": "busy",
                "message": "Too many downloads at once from this sharer; "
                "try again when one has finished.",
            }
        )
    channel.close()


class Upload:
    """One `get` channel: wait for the request, send the file under both limits."""

    def __init__(self, ch: Channel, catalogue: Catalogue, r: Receiver, report: Reporter) -> None:
        self.ch = ch
        self.catalogue = catalogue
        self.r = r
        self.report = report
        self.sent = 0
        self.acked = 0
        self.request: dict[str, Any] | None = None
        self.reply: dict[str, Any] | None = None
        self.wake = asyncio.Event()

    async def _read(self) -> None:
        try:
            while True:
                m = await self.ch.recv()
                if not isinstance(m, dict):
                    continue
                if m["t"] == "get" and self.request is None:
                    self.request = m
                elif m["t"] == "ack" and _count(m.get("bytes")):
                    # An ack beyond what was sent would only open the window wider.
                    self.acked = min(self.sent, max(self.acked, int(m["bytes"])))
                elif m["t"] in ("ok", "bad", "cancel"):
                    self.reply = m
                self.wake.set()
        except ChannelClosed:
            self.wake.set()

    async def _until(self, cond: Any, within: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not cond():
            if self.ch.closed.is_set():
                raise ChannelClosed()
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError()
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), min(left, 1.0))

    async def run(self) -> SharedFile | None:
        reader = asyncio.create_task(self._read())
        try:
            return await self._run()
        finally:
            reader.cancel()

    async def _run(self) -> SharedFile | None:
        await self.ch.wait_open(REQUEST_TIMEOUT)
        await self._until(lambda: self.request is not None, REQUEST_TIMEOUT)
        assert self.request is not None
        f = self.catalogue.files.get(str(self.request.get("file")))
        if f is None:
            self._error("no-such-file", "The sharer no longer offers this file.")
            raise UploadFailed("no-such-file")
        start = self.request.get("from", 0)
        if not valid_from(start, f.size):
            self._error(
                "bad-offset", "A download can only start at a block boundary within the file."
            )
            raise UploadFailed("bad-offset")
        self.sent = self.acked = start
        try:
            sha256, blocks = await f.hashes
        except OSError:
            self._unreadable()
            raise UploadFailed("unreadable") from None
        n = self.r.number
        chunk = self.r.link.chunk
        self.ch.send_json(
            {"t": "meta", "size": f.size, "sha256": sha256, "block": BLOCK, "from": start}
        )
        src = await asyncio.to_thread(open, f.source, "rb")
        try:
            await asyncio.to_thread(src.seek, start)
            while self.sent < f.size:
                i = self.sent // BLOCK
                block = await asyncio.to_thread(src.read, min(BLOCK, f.size - self.sent))
                if not block:
                    self._unreadable()
                    raise UploadFailed("unreadable")
                self.ch.send_json({"t": "block", "i": i, "sha256": blocks[i]})
                for p in range(0, len(block), chunk):
                    piece = block[p : p + chunk]
                    # Unacknowledged bytes, this chunk included, stay within the window.
                    need = self.sent + len(piece) - WINDOW
                    await self._until(lambda need=need: self.acked >= need, CONFIRM_TIMEOUT)
                    await self.ch.send_bytes(piece)
                    self.sent += len(piece)
                    await asyncio.sleep(0)  # the heartbeat and acks get their turn
                self.report.emit("upload", receiver=n, path=f.path, bytes=self.acked, size=f.size)
        finally:
            src.close()
        self.ch.send_json({"t": "end", "size": f.size, "sha256": sha256})
        await self._until(lambda: self.reply is not None, CONFIRM_TIMEOUT)
        assert self.reply is not None
        ok = self.reply["t"] == "ok"
        if self.reply["t"] == "cancel":
            return None
        self.report.emit("upload", receiver=n, path=f.path, bytes=f.size, size=f.size)
        self.report.emit("uploaded", receiver=n, path=f.path, size=f.size, verified=ok)
        return f if ok else None

    def _error(self, code: str, message: str) -> None:
        with contextlib.suppress(ChannelClosed):
            self.ch.send_json({"t": "error", "code": code, "message": message})

    def _unreadable(self) -> None:
        with contextlib.suppress(ChannelClosed):
            self.ch.send_json(
                {
                    "t": "error",
                    "code": "unreadable",
                    "message": "The sharer can no longer read this file (moved or changed?).",
                }
            )


def valid_from(v: object, size: int) -> bool:
    """0 <= from <= size, at a block boundary or the end (§3.3)."""
    return _count(v) and v <= size and (v % BLOCK == 0 or v == size)  # type: ignore[operator]


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


__all__ = ["Exit", "PeerError", "Sharer"]
