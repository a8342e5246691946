"""What the link proves (docs/transfer-protocol.md, version 2): the secret after # never
reaches the server, only the sharer named in the link can act as the sharer, replayed
signals are refused, and links of version 1 are refused with an explanation."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.flows import download, fragment, link_parts, open_link, share
from tests.e2e.linkholder import derive, impostor, unb64url
from tests.e2e.recorder import recording_proxy
from tests.support.pages import Pages, sha256_file, write_random
from tests.support.procs import PeaNode, wait_for

IMPOSTOR_SENTENCE = "Someone else who has this link tried to pose as the sharer; pea ignored them."
CONNECTED = "Connected to the sharer."


@pytest.fixture(scope="module")
def small(share_dir: Path) -> Path:
    path = share_dir / "security" / "secret plans.bin"
    write_random(path, 300_000)
    return path


class BrowserLog:
    """What Playwright sees a page send and receive: every request (service workers'
    included, through the context), its headers and body, every WebSocket frame."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def watch(self, page: Page) -> Page:
        ctx = page.context

        def on_request(req: Any) -> None:
            head = f"{req.method} {req.url}\n" + "".join(
                f"{k}: {v}\n" for k, v in req.headers.items()
            )
            self.items.append(("request", head.encode() + (req.post_data_buffer or b"")))

        def on_ws(ws: Any) -> None:
            self.items.append(("websocket", ws.url.encode()))
            for event in ("framesent", "framereceived"):
                ws.on(
                    event,
                    lambda p, event=event: self.items.append(
                        (event, p.encode() if isinstance(p, str) else p)
                    ),
                )

        ctx.on("request", on_request)
        page.on("websocket", on_ws)
        return page


def forms(raw: bytes, text: str | None = None) -> list[bytes]:
    """Every spelling of a secret value worth searching for."""
    out = [
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
    ]
    if text is not None:
        out += [text.encode(), urllib.parse.quote(text, safe="").encode()]
    return out


def test_the_secret_never_reaches_the_server(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], small: Path
) -> None:
    """A share, two receivers and their downloads, with a recording proxy in front of each
    node and Playwright's own request and WebSocket events: neither the secret (in any
    spelling), nor K, nor the fragment appears anywhere; the room id and the sharer's
    public key do (they are public by design)."""
    node_a, node_b = cluster
    log = BrowserLog()
    with recording_proxy(node_a.url) as pa, recording_proxy(node_b.url) as pb:
        sharer = log.watch(pages.new())
        link = share(sharer, pa.url, [small])
        qr = sharer.locator("[data-testid=qr]")
        expect(qr).to_have_js_property("complete", True)
        assert qr.evaluate("img => img.naturalWidth") > 0, "the QR code was not drawn"
        assert qr.get_attribute("src", timeout=5000).startswith("blob:")  # type: ignore[union-attr]
        for _ in range(2):
            r = log.watch(pages.new())
            open_link(r, pb.url + "/" + fragment(link), expect_files=1)
            assert sha256_file(download(r, small.name)) == sha256_file(small)
        expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(2)
        recorded = [(r.what, r.data) for r in pa.snapshot() + pb.snapshot()]

    secret, _ = link_parts(link)
    room, k = derive(secret)
    frag = link[link.index("#") + 1 :]
    needles = {
        "secret": forms(unb64url(secret), secret),
        "K": forms(k),
        "fragment": [frag.encode(), urllib.parse.quote(frag, safe="").encode()],
    }
    haystacks = recorded + log.items
    assert any(w == "http" for w, _ in recorded) and any(w == "ws-up" for w, _ in recorded)
    if pages.engine == "chromium":
        # Playwright over WebDriver BiDi reports no WebSocket frames in Firefox; the
        # recording proxies in front of both nodes still see every frame there.
        assert any(w == "framesent" for w, _ in log.items), "Playwright saw no WebSocket frame"
    for name, spellings in needles.items():
        for needle in spellings:
            for where, data in haystacks:
                assert needle not in data, (
                    f"the {name} ({needle!r}) reached the server in a {where}: {data[:300]!r}"
                )
    assert not [d for w, d in recorded if w == "http" and b" /api/qr" in d.split(b"\r\n")[0]]
    # What the server may learn, and does: the room, and the sharer's public key (whose hash
    # is the public half of the link).
    ups = b"".join(d for w, d in recorded if w == "ws-up")
    assert room.encode() in ups
    pks = set(re.findall(rb'"pk":"([A-Za-z0-9_-]{43})"', ups))
    assert len(pks) == 1, "every envelope of the sharer carries its one public key"


def test_a_link_holder_cannot_pose_as_the_sharer(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], small: Path
) -> None:
    """Someone else with the link joins first and, to every receiver, sends offers,
    candidates and a refusal with valid MACs, signed with its own key (or not signed, or
    claiming the sharer's public key, or with a broken MAC): receivers never take it for the
    sharer, say so plainly, and still get the real sharer's file, verified. The sharer is
    told that another page with its link acts as a sharer."""
    node_a, node_b = cluster
    sharer = pages.new()
    link = share(sharer, node_a.url, [small])
    secret, _ = link_parts(link)
    with impostor(node_a.url, secret) as fake:
        # The sharer offers to it as to anyone with the link: that is how it learns the
        # sharer's public key, which it then claims without the signature.
        wait_for(lambda: fake.sharer_pk is not None, 15, "the sharer's offer to the impostor")
        expect(sharer.locator("[data-testid=impostor]")).to_contain_text(
            re.compile("another page with this link is acting as a sharer", re.I), timeout=15000
        )
        for node in (node_b, node_a):
            r = pages.new()
            open_link(r, node.url + "/" + fragment(link), expect_files=1)
            expect(r.locator("[data-testid=impostor]")).to_have_text(IMPOSTOR_SENTENCE)
            assert sha256_file(download(r, small.name)) == sha256_file(small)
            expect(r.locator("[data-testid=status]")).to_have_text(CONNECTED)
        assert fake.sent.get("offer", 0) >= 2 * 4, f"the impostor did not pose: {fake.sent}"
    expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(2)


def doubled(frame: dict[str, Any]) -> list[dict[str, Any]]:
    """A network that delivers every signal twice: each second copy is a replay."""
    return [frame, frame] if frame.get("type") == "signal" else [frame]


def console(page: Page) -> list[str]:
    out: list[str] = []
    page.on("console", lambda m: out.append(m.text))
    return out


def test_replayed_signals_are_refused(
    pages: Pages, cluster: tuple[PeaNode, PeaNode], small: Path
) -> None:
    """In front of both nodes, a relay delivers every signal twice (offer, answer,
    candidates, hello); once connected, it re-sends the captured offer and a candidate to
    the receiver and the captured answer and a candidate to the sharer: every copy is
    refused and counted, nothing is shown as tampering, the connection stays up and the
    file arrives verified."""
    node_a, node_b = cluster
    replay: Callable[[dict[str, Any]], list[dict[str, Any]]] = doubled
    with recording_proxy(node_a.url, replay) as pa, recording_proxy(node_b.url, replay) as pb:
        sharer = pages.new()
        sharer_log = console(sharer)
        link = share(sharer, pa.url, [small])
        r = pages.new()
        r_log = console(r)
        open_link(r, pb.url + "/" + fragment(link), expect_files=1)
        before = (replays(r_log), replays(sharer_log))
        for proxy, kinds in ((pb, ("offer", "candidate")), (pa, ("answer", "candidate"))):
            old: dict[str, Any] = {}
            for f in proxy.frames("ws-down"):
                if f.get("type") == "signal" and f["data"].get("kind") in kinds:
                    old.setdefault(f["data"]["kind"], f)
            assert set(old) == set(kinds), f"nothing to replay: {old}"
            for f in old.values():
                assert proxy.inject(f) == 1
        r.wait_for_timeout(1000)
        expect(r.locator("[data-testid=status]")).to_have_text(CONNECTED)
        expect(sharer.locator(".receivers [data-state=connected]")).to_have_count(1)
        expect(r.locator("[role=alert]")).to_have_count(0)
        expect(sharer.locator("[role=alert]")).to_have_count(0)
        assert sha256_file(download(r, small.name)) == sha256_file(small)
        assert before[0] >= 2 and before[1] >= 2, "the doubled signals were not refused"
        assert replays(r_log) >= before[0] + 2, r_log
        assert replays(sharer_log) >= before[1] + 2, sharer_log


def replays(log: list[str]) -> int:
    return sum("refused a replayed" in m for m in log)


def test_version_2_link_is_refused(pages: Pages, cluster: tuple[PeaNode, PeaNode]) -> None:
    """A link made by pea version 2 (#2.<secret>.<commit>: no block hashes, no resume)
    is refused by name before anything reaches the server."""
    r = pages.new()
    sockets: list[str] = []
    r.on("websocket", lambda ws: sockets.append(ws.url))
    r.goto(cluster[1].url + "/#2.AAECAwQFBgcICQoLDA0ODw.If4x36FUomFia_hUBG_SJw")
    status = r.locator("[data-testid=status]")
    expect(status).to_contain_text("made by an older version of pea")
    expect(status).to_contain_text("ask the sharer to share again")
    r.wait_for_timeout(500)
    assert sockets == []


def test_version_1_link_is_refused(pages: Pages, cluster: tuple[PeaNode, PeaNode]) -> None:
    """A link made by pea before version 2 (a bare secret after #) is refused with a
    sentence that says what to do, and the page does not even contact the server."""
    r = pages.new()
    sockets: list[str] = []
    r.on("websocket", lambda ws: sockets.append(ws.url))
    r.goto(cluster[1].url + "/#q3Zc1m0e3s1w8JcVbW9c1A")
    status = r.locator("[data-testid=status]")
    expect(status).to_contain_text("made by an older version of pea")
    expect(status).to_contain_text("ask the sharer to share again")
    r.wait_for_timeout(500)
    assert sockets == []
