"""Someone else who has the link: a WebSocket client that knows the secret, so it joins the
room and makes valid MACs (docs/transfer-protocol.md §1 and §2), but signs with its own Ed25519
key, not the one the link commits to. It poses as the sharer to every receiver and as a
second sharer to the real one. Runs in a thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.client import Client

# An SDP that parses: an old client that believed it would try to connect to it.
FAKE_OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
    "a=ice-ufrag:AbCd\r\na=ice-pwd:AbCdEfGhIjKlMnOpQrStUvWx\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive(secret: str) -> tuple[str, bytes]:
    """(room, K) from the link's secret, as §1 says: from its 16 decoded bytes."""
    s = unb64url(secret)
    room = b64url(hmac.new(s, b"pea room v3", hashlib.sha256).digest())
    return room, hmac.new(s, b"pea signal key v3", hashlib.sha256).digest()


class Sealer:
    """Makes v3 envelopes for one sender: its own session id and counter, its own key."""

    def __init__(self, secret: str, key: Ed25519PrivateKey | None = None) -> None:
        self.room, self.k = derive(secret)
        self.key = key
        self.sid = b64url(os.urandom(16))
        self.seq = 0

    def message(self, kind: str, sender: str, to: str, sid: str, seq: int, payload: str) -> bytes:
        return "\n".join(
            ["pea-signal-v3", self.room, kind, sender, to, sid, str(seq), payload]
        ).encode()

    def seal(self, kind: str, sender: str, to: str, payload: str) -> dict[str, Any]:
        self.seq += 1
        m = self.message(kind, sender, to, self.sid, self.seq, payload)
        env: dict[str, Any] = {
            "v": 3,
            "kind": kind,
            "payload": payload,
            "sid": self.sid,
            "seq": self.seq,
            "mac": hmac.new(self.k, m, hashlib.sha256).hexdigest(),
        }
        if self.key is not None:
            pk = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            env["pk"] = b64url(pk)
            env["sig"] = b64url(self.key.sign(m))
        return env


class Impostor:
    """Joins the room and, to every peer it meets, sends what only the sharer should: offers,
    candidates and a refusal, signed with its own key (valid MAC, wrong key), unsigned, and
    with a broken MAC. To the sharer it sends an offer, as a second sharer would."""

    def __init__(self, node_url: str, secret: str) -> None:
        self.ws_url = node_url.replace("http://", "ws://") + "/ws"
        self.signed = Sealer(secret, Ed25519PrivateKey.generate())
        self.unsigned = Sealer(secret)
        self.sharer_pk: str | None = None  # learnt from the offer the real sharer makes us
        self.peer: str | None = None
        self.sent: dict[str, int] = {}
        self.hellos = 0
        self._loop = asyncio.new_event_loop()
        self._joined = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    async def _send(self, ws: Client, to: str, data: dict[str, Any]) -> None:
        await ws.signal(to, data)
        self.sent[data.get("kind", "?")] = self.sent.get(data.get("kind", "?"), 0) + 1

    async def _pose(self, ws: Client, to: str) -> None:
        me = self.peer
        assert me is not None
        cand = json.dumps(
            {
                "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host",
                "sdpMid": "0",
                "sdpMLineIndex": 0,
            }
        )
        await self._send(ws, to, self.signed.seal("offer", me, to, FAKE_OFFER))
        await self._send(ws, to, self.signed.seal("candidate", me, to, cand))
        await self._send(ws, to, self.unsigned.seal("offer", me, to, FAKE_OFFER))
        if self.sharer_pk is not None:
            # The real sharer's public key is public: claiming it without its signature fails too.
            stolen = self.unsigned.seal("offer", me, to, FAKE_OFFER)
            stolen["pk"] = self.sharer_pk
            stolen["sig"] = b64url(bytes(64))
            await self._send(ws, to, stolen)
            # …and with a broken MAC it looks like the server tampering with the sharer's
            # offer: a receiver says so, but must still connect to the real sharer.
            await self._send(ws, to, {**stolen, "mac": "0" * 64})
        garbage = self.unsigned.seal("offer", me, to, FAKE_OFFER)
        garbage["mac"] = "0" * 64
        await self._send(ws, to, garbage)
        await self._send(ws, to, {"v": 1, "kind": "offer", "payload": FAKE_OFFER, "mac": "0" * 64})
        await self._send(ws, to, self.signed.seal("refuse", me, to, "you are not the sharer"))

    async def _main(self, room: str) -> None:
        self._stop = asyncio.Event()
        ws = await Client.open(self.ws_url)
        try:
            welcome = await ws.join(room, name="impostor")
            self.peer = me = ws.id
            assert me is not None
            self._joined.set()
            for p in welcome["peers"]:
                # To the sharer, as another sharer: a hello (fine) and an offer (not).
                await self._send(
                    ws, p["peer"], self.signed.seal("hello", me, p["peer"], "receiver")
                )
                await self._send(
                    ws, p["peer"], self.signed.seal("offer", me, p["peer"], FAKE_OFFER)
                )

            async def read() -> None:
                async for raw in ws.ws:
                    msg = json.loads(raw)
                    if msg["type"] == "peer-joined":
                        await self._pose(ws, msg["peer"])
                    elif msg["type"] == "signal":
                        data = msg["data"]
                        if isinstance(data.get("pk"), str):
                            self.sharer_pk = data["pk"]
                        if data.get("kind") == "hello":
                            self.hellos += 1
                            await self._pose(ws, msg["from"])

            reader = asyncio.create_task(read())
            stop = asyncio.create_task(self._stop.wait())
            await asyncio.wait([reader, stop], return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            stop.cancel()
            if reader.done() and not reader.cancelled() and reader.exception():
                raise reader.exception()  # type: ignore[misc]
        finally:
            await ws.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main(self.signed.room))
        except BaseException as e:  # reported by stop(), not lost in a thread
            self.error = e
            self._joined.set()
        finally:
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        if not self._joined.wait(10) or self.error:
            raise RuntimeError(f"impostor did not join: {self.error!r}")

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert self.error is None, f"impostor failed: {self.error!r}"


@contextlib.contextmanager
def impostor(node_url: str, secret: str) -> Iterator[Impostor]:
    i = Impostor(node_url, secret)
    i.start()
    try:
        yield i
    finally:
        i.stop()
