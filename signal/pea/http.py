"""HTTP side of a node: health, readiness, metrics, the web client, Origin and Host checks."""

from __future__ import annotations

import ipaddress
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from pea.node import Node

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self'; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}

PACKAGED_WEB_DIR = Path(__file__).parent / "static"

# The web app manifest's registered type; the static files are served by extension.
mimetypes.add_type("application/manifest+json", ".webmanifest")

NOT_BUILT_PAGE = """<!doctype html><meta charset="utf-8"><title>pea</title>
<h1>pea signalling node</h1>
<p>The web client is not built into this installation. Run <code>make web</code>
(or <code>make run</code>) in the source tree,
or point <code>--web-dir</code> at a built bundle.</p>
"""


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    node = _node(request)
    body = {
        "ready": node.ready,
        "bus": "connected" if node.bus.healthy else "disconnected",
        "draining": node.draining,
    }
    if node.not_ready_reason is not None:
        body["reason"] = node.not_ready_reason
    return JSONResponse(body, status_code=200 if node.ready else 503)


async def metrics(request: Request) -> Response:
    node = _node(request)
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def not_built(request: Request) -> Response:
    return HTMLResponse(NOT_BUILT_PAGE)


async def share_target(request: Request) -> Response:
    """Where the browser POSTs what another app shared to pea (the manifest's
    `share_target`). The page's service worker answers that POST inside the browser; it
    reaches the server only where no worker runs yet. The server never reads the body
    (the files are not the server's to see): it sends the browser to the start page,
    which says that the share did not reach pea, and closes the connection so the rest
    of the upload is not even received."""
    return RedirectResponse(
        "/?share-target=refused", status_code=303, headers={"connection": "close"}
    )


def web_dir(configured: str | None) -> Path | None:
    if configured:
        return Path(configured)
    if (PACKAGED_WEB_DIR / "index.html").is_file():
        return PACKAGED_WEB_DIR
    return None


LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def host_name(value: str) -> str:
    """The host of a `Host` header (`name[:port]` or `[v6][:port]`), lowercased."""
    value = value.strip().lower()
    try:
        return urlsplit("//" + value).hostname or ""
    except ValueError:
        return value


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_allowed(host: str | None, public_url: str, own: tuple[str, ...]) -> bool:
    """With a public URL, a WebSocket handshake must name this node in `Host`: the
    public URL's host, an address the node was reached on (`own`: the socket's
    local address, the bind address), or loopback. A DNS-rebinding page can only
    name its own host: the browser believes it talks to the attacker's site.
    Ports are not compared: proxies and port mappings change them, and the
    attack is in the name."""
    if not host:
        return False
    name = host_name(host)
    if not name:
        return False
    if _is_loopback(name) or name == (urlsplit(public_url).hostname or ""):
        return True
    return any(name == addr.lower().strip("[]") for addr in own)


def origin_allowed(
    origin: str | None, host: str | None, allowed: tuple[str, ...], public_url: str | None
) -> bool:
    """Browsers always send Origin; tools and native peers may not, and are let in."""
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if "*" in allowed or origin in allowed:
        return True
    if public_url is not None:
        pub = urlsplit(public_url)
        if origin == f"{pub.scheme}://{pub.netloc}":
            return True
    return host is not None and urlsplit(origin).netloc == host
