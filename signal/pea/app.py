"""create_app(settings) -> Starlette; the lifespan starts and stops the node.

`create_metrics_app(node)` is the separate `/metrics` app, served on its own port."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from pea import http
from pea.admission import Admission
from pea.bus import Bus, make_bus
from pea.config import Settings
from pea.node import Node

log = logging.getLogger("pea")


class SecurityHeaders:
    """Pure ASGI (not BaseHTTPMiddleware): adds headers to HTTP responses and
    leaves WebSocket traffic alone, at no cost per frame."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in http.SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def websocket_endpoint(ws: WebSocket) -> None:
    admission: Admission = ws.app.state.admission
    await admission.serve(ws)


class PeaApp(Starlette):
    """Starlette, with `/ws` dispatched straight to its endpoint: the router and
    the middleware and exception-handler stack cost ~3 KiB per open WebSocket
    for nothing, since the endpoint handles every error itself."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self
            await websocket_endpoint(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, bus: Bus | None = None) -> Starlette:
    node_id = secrets.token_hex(6)
    node = Node(
        settings,
        bus
        or make_bus(
            settings.redis_url, node_id, lease=settings.presence_lease, grace=settings.resume_grace
        ),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.secret_is_random and settings.redis_url:
            log.warning(
                "PEA_SECRET is not set: resume tokens are signed with a random key of this "
                "process, so a peer cannot resume on another node. Give every node the same secret."
            )
        await node.start()
        log.info(
            "node %s ready: %s bus",
            node.bus.node_id,
            "Redis" if settings.redis_url else "in-memory (single node)",
        )
        try:
            yield
        finally:
            await node.stop()

    # No route for /ws: PeaApp dispatches it before the router.
    routes: list[Route | Mount] = [
        Route("/healthz", http.healthz),
        Route("/readyz", http.readyz),
        Route("/share-target", http.share_target, methods=["POST"]),
    ]
    static = http.web_dir(settings.web_dir)
    if static is not None:
        routes.append(Mount("/", StaticFiles(directory=static, html=True)))
    else:
        routes.append(Route("/", http.not_built))
    app = PeaApp(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.node = node
    app.state.admission = Admission(node)
    return app


def create_metrics_app(node: Node) -> Starlette:
    """Only `/metrics`: operators scrape it on a port the public never reaches."""
    app = Starlette(routes=[Route("/metrics", http.metrics)])
    app.state.node = node
    return app
