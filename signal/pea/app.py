"""create_app(settings) -> Starlette; the lifespan starts and stops the node."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from pea import http
from pea.bus import Bus, make_bus
from pea.config import Settings
from pea.connection import Connection
from pea.node import Node
from pea.protocol import Close, error_frame, reconnect_frame

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
    node: Node = ws.app.state.node
    settings = node.settings
    if not http.origin_allowed(
        ws.headers.get("origin"),
        ws.headers.get("host"),
        settings.allowed_origins,
        settings.public_url,
    ):
        log.info("refused a WebSocket from origin %s", ws.headers.get("origin"))
        await ws.close(Close.POLICY)  # before accept: the handshake gets HTTP 403
        return
    await ws.accept()
    if node.draining:
        await ws.send_text(reconnect_frame(0))
        await ws.close(Close.SERVICE_RESTART)
        return
    if not node.accepting():
        await ws.send_text(
            error_frame("unavailable", "This server is at capacity; try again shortly.")
        )
        await ws.close(Close.TRY_AGAIN)
        return
    conn = Connection(ws, settings, node.metrics)
    node.connections.add(conn)
    node.metrics.connections.set(len(node.connections))
    await conn.run(node)


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

    routes: list[Route | WebSocketRoute | Mount] = [
        Route("/healthz", http.healthz),
        Route("/readyz", http.readyz),
        Route("/metrics", http.metrics),
        Route("/api/qr", http.qr, methods=["POST"]),
        WebSocketRoute("/ws", websocket_endpoint),
    ]
    static = http.web_dir(settings.web_dir)
    if static is not None:
        routes.append(Mount("/", StaticFiles(directory=static, html=True)))
    else:
        routes.append(Route("/", http.not_built))
    app = PeaApp(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.node = node
    return app
