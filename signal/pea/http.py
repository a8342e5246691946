"""HTTP side of a node: health, readiness, metrics, QR codes, the web client."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

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


def _problem(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def qr(request: Request) -> Response:
    """Render the posted link as an SVG QR code. The link comes in the body so it
    never lands in a URL or an access log, and it is not logged here either."""
    limit = _node(request).settings.max_qr_bytes
    body = await request.body()
    if len(body) > limit + 64:
        return _problem(413, f"The link is longer than {limit} bytes.")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return _problem(400, "The body must be UTF-8 text.")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            link = json.loads(text).get("link")
        except (ValueError, AttributeError):
            return _problem(400, 'Send the link as text or as JSON {"link": "..."}.')
    else:
        link = text.strip()
    if not isinstance(link, str) or not link:
        return _problem(400, "Send the link to encode in the request body.")
    if len(link.encode()) > limit:
        return _problem(413, f"The link is longer than {limit} bytes.")
    if urlsplit(link).scheme not in ("http", "https"):
        return _problem(400, "Only http and https links are rendered.")
    image = qrcode.make(
        link,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    out = io.BytesIO()
    image.save(out)
    return Response(
        out.getvalue(),
        media_type="image/svg+xml",
        headers={"cache-control": "no-store"},
    )


async def not_built(request: Request) -> Response:
    return HTMLResponse(NOT_BUILT_PAGE)


def web_dir(configured: str | None) -> Path | None:
    if configured:
        return Path(configured)
    if (PACKAGED_WEB_DIR / "index.html").is_file():
        return PACKAGED_WEB_DIR
    return None


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
