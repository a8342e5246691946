"""One aiortc RTCPeerConnection with one remote peer, as the web client's PeerLink:
fixed roles (the sharer offers and creates `control`, the receiver answers), the
connect timeout, the `control` heartbeat, and the ICE glue aiortc needs.

aiortc gathers every candidate before it completes a description, so this peer puts
its candidates in the SDP and sends no `candidate` envelopes; it takes the other side's
trickled ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aioice.ice
import aioice.turn
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from pea.peer.channel import Channel, ChannelClosed

log = logging.getLogger("pea.peer")

CONNECT_TIMEOUT = 20.0  # the default of --connect-timeout
PING_EVERY = 2.0
SILENCE = 8.0  # nothing heard this long: the connection is lost

Send = Callable[[str, str], Awaitable[None]]
Report = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
_RANK = {"host": 1, "prflx": 2, "srflx": 3, "relay": 4}  # "best" in an outcome: relay first

_original_host_addresses = aioice.ice.get_host_addresses


def allow_loopback(on: bool) -> None:
    """aioice never offers 127.0.0.1. Where every peer is on this machine (the server
    is on loopback, or a loopback-only network namespace) that is the one path."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = _original_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return [*found, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in found else found

    aioice.ice.get_host_addresses = with_loopback if on else _original_host_addresses


# aioice gives each host socket a 256 KiB receive buffer. A Python peer reads its socket
# in bursts, so a fast sender (a browser, or SCTP growing its window) overflowed it:
# every dropped packet then cost a retransmission timeout of a second or more, and a
# transfer crawled at well under 1 MiB/s. The kernel caps this at net.core.rmem_max.
aioice.turn.UDP_SOCKET_BUFFER_SIZE = 4 << 20


def ice_servers(raw: Any) -> list[RTCIceServer]:
    """RTCIceServer objects from `welcome.config.ice_servers` or `--ice-servers` (hostile
    JSON: what does not have the shape is dropped)."""
    out: list[RTCIceServer] = []
    for s in raw if isinstance(raw, list) else []:
        if not isinstance(s, dict):
            continue
        urls = s.get("urls")
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls) or not urls:
            continue
        user, cred = s.get("username"), s.get("credential")
        out.append(
            RTCIceServer(
                urls=urls,
                username=user if isinstance(user, str) else None,
                credential=cred if isinstance(cred, str) else None,
            )
        )
    return out


_MMS = re.compile(r"^a=max-message-size:(\d+)", re.M)


def chunk_size(remote_sdp: str) -> int:
    """max(16384, min(maxMessageSize, 262144)) from the remote SDP (65536 if absent)."""
    m = _MMS.search(remote_sdp)
    mms = int(m[1]) if m and int(m[1]) > 0 else 65536
    return max(16384, min(mms, 256 << 10))


def best(types: Any) -> str:
    """relay > srflx > prflx > host; "none" when there is no candidate of a known type."""
    known = [t for t in types if t in _RANK]
    return max(known, key=_RANK.__getitem__) if known else "none"


class LinkFailed(Exception):
    """Why a connection ended: "timeout", "ice-failed", "lost", "closed"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PeerLink:
    def __init__(
        self,
        remote: str,
        role: str,
        servers: list[RTCIceServer],
        send: Send,
        on_channel: Callable[[RTCDataChannel], None] | None = None,
        report: Report | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.remote = remote
        self.connect_timeout = connect_timeout
        self.report = report
        self.reported = False
        self._reporting: asyncio.Task[None] | None = None
        self.role = role
        self.send = send
        self.on_channel = on_channel
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.control: Channel | None = None
        self.remote_sdp = ""
        self.have_remote = False
        self.pending: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.reason = ""
        self.heard = 0.0
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pong = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("datachannel", self._on_datachannel)
        self._tasks.append(asyncio.create_task(self._deadline()))

    # -- state ---------------------------------------------------------------------

    def _on_state(self) -> None:
        if self.pc.connectionState == "failed":
            self.fail("lost" if self.connected.is_set() else "ice-failed")

    async def _deadline(self) -> None:
        await asyncio.sleep(self.connect_timeout)
        if not self.connected.is_set():
            self.fail("timeout")

    def fail(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.reason = reason
        self.ended.set()
        log.info("connection with %s ended: %s", self.remote, reason)
        if reason in ("ice-failed", "timeout"):
            local, remote = self._gathered()
            self._tell({"result": "failed", "local": local, "remote": remote, "reason": reason})
        asyncio.get_running_loop().create_task(self.close())

    # -- the outcome, for the node's metrics (docs/protocol.md, Outcomes) -------------------

    def _tell(self, outcome: dict[str, Any]) -> None:
        """Once per connection attempt, when it connects or fails, as the web client does."""
        if self.reported or self.report is None:
            return
        self.reported = True
        # Not among the tasks close() cancels: a failure closes the link at once, and the
        # report must still go out.
        self._reporting = asyncio.get_running_loop().create_task(self.report(outcome))

    def _ice(self) -> Any:
        """aiortc's ICE transport of this connection (one, for the data channels), if any."""
        sctp = self.pc.sctp
        return sctp.transport.transport if sctp is not None else None

    def path(self) -> tuple[str, str] | None:
        """The candidate types (local, remote) of the pair in use, if aioice knows it."""
        try:
            pair = next(iter(self._ice()._connection._nominated.values()))
            local, remote = pair.local_candidate.type, pair.remote_candidate.type
        except Exception:  # not connected, or aioice's internals moved: no report
            return None
        return (local, remote) if local in CANDIDATE_TYPES and remote in CANDIDATE_TYPES else None

    def _gathered(self) -> tuple[str, str]:
        """The best candidate type gathered here and received from the other side."""
        ice = self._ice()
        if ice is None:
            return "none", "none"
        return (
            best(c.type for c in ice.iceGatherer.getLocalCandidates()),
            best(c.type for c in ice.getRemoteCandidates()),
        )

    async def close(self) -> None:
        if not self.ended.is_set():
            self.reason = "closed"
            self.ended.set()
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()

    async def wait_connected(self) -> None:
        """Returns once `control` is open; LinkFailed if the connection ends first."""
        done = asyncio.create_task(self.connected.wait())
        ended = asyncio.create_task(self.ended.wait())
        try:
            await asyncio.wait([done, ended], return_when="FIRST_COMPLETED")
        finally:
            done.cancel()
            ended.cancel()
        if self.ended.is_set():
            raise LinkFailed(self.reason)

    # -- channels --------------------------------------------------------------------

    def touch(self) -> None:
        """Anything received proves the peer alive. A peer starved of CPU reads its socket
        late, and a `ping` queued behind megabytes of file data must not count as silence."""
        self.heard = asyncio.get_running_loop().time()

    def wrap(self, ch: RTCDataChannel) -> Channel:
        return Channel(ch, self.touch)

    def _on_datachannel(self, ch: RTCDataChannel) -> None:
        if ch.label == "control":
            if self.control is None:
                self._adopt_control(self.wrap(ch))
        elif self.on_channel is not None:
            self.on_channel(ch)

    def _adopt_control(self, control: Channel) -> None:
        self.control = control
        self._tasks.append(asyncio.create_task(self._watch_control(control)))

    async def _watch_control(self, control: Channel) -> None:
        loop = asyncio.get_running_loop()
        try:
            await control.wait_open(self.connect_timeout)
        except ChannelClosed:
            return
        self.heard = loop.time()
        self.connected.set()
        found = self.path()
        if found is not None:
            self._tell({"result": "connected", "local": found[0], "remote": found[1]})
        self._tasks.append(asyncio.create_task(self._heartbeat(control)))
        try:
            while True:
                msg = await control.recv()
                self.heard = loop.time()
                if not isinstance(msg, dict):
                    continue
                if msg["t"] == "ping":
                    with contextlib.suppress(ChannelClosed):
                        control.send_json({"t": "pong"})
                elif msg["t"] == "pong":
                    self._pong.set()
                else:
                    self.inbox.put_nowait(msg)
        except ChannelClosed:
            self.fail("closed")

    async def _heartbeat(self, control: Channel) -> None:
        loop = asyncio.get_running_loop()
        while not self.ended.is_set():
            await asyncio.sleep(PING_EVERY)
            if loop.time() - self.heard > SILENCE:
                self.fail("lost")
                return
            with contextlib.suppress(ChannelClosed):
                control.send_json({"t": "ping"})

    async def probe(self, within: float = 3.0) -> bool:
        """Does the peer still answer directly? (The server said it left: check first.)"""
        if self.control is None or not self.connected.is_set() or self.ended.is_set():
            return False
        self._pong.clear()
        try:
            self.control.send_json({"t": "ping"})
            await asyncio.wait_for(self._pong.wait(), within)
        except (ChannelClosed, TimeoutError):
            return False
        return True

    def create_channel(self, label: str) -> Channel:
        return self.wrap(self.pc.createDataChannel(label, ordered=True))

    @property
    def chunk(self) -> int:
        return int(os.environ.get("PEA_CHUNK", 0)) or chunk_size(self.remote_sdp)

    # -- signalling ------------------------------------------------------------------

    async def start_offer(self) -> None:
        self._adopt_control(self.create_channel("control"))
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.send("offer", self.pc.localDescription.sdp)

    async def handle(self, kind: str, payload: str) -> None:
        if self.ended.is_set():
            return
        if kind == "offer" and self.role == "answerer" and not self.have_remote:
            self.remote_sdp = payload
            await self.pc.setRemoteDescription(RTCSessionDescription(payload, "offer"))
            await self._flush()
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            await self.send("answer", self.pc.localDescription.sdp)
        elif kind == "answer" and self.role == "offerer" and not self.have_remote:
            self.remote_sdp = payload
            await self.pc.setRemoteDescription(RTCSessionDescription(payload, "answer"))
            await self._flush()
        elif kind == "candidate":
            try:
                cand = json.loads(payload)
            except ValueError:
                return
            if not isinstance(cand, dict):
                return
            if self.have_remote:
                await self._add_candidate(cand)
            elif len(self.pending) < 100:
                self.pending.append(cand)

    async def _flush(self) -> None:
        self.have_remote = True
        for c in self.pending:
            await self._add_candidate(c)
        self.pending.clear()

    async def _add_candidate(self, c: dict[str, Any]) -> None:
        text = c.get("candidate")
        if not isinstance(text, str) or not text:
            return
        try:
            cand = candidate_from_sdp(
                text.split(":", 1)[1] if text.startswith("candidate:") else text
            )
            mid, index = c.get("sdpMid"), c.get("sdpMLineIndex")
            cand.sdpMid = mid if isinstance(mid, str) else None
            cand.sdpMLineIndex = index if isinstance(index, int) else None
            await self.pc.addIceCandidate(cand)
        except Exception as e:  # a candidate we cannot use (other family, mDNS) is no error
            log.debug("ignored candidate %r: %s", text, e)
