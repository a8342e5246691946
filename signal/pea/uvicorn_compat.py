"""What pea takes from uvicorn (and Starlette) beyond their public API, checked
once at start-up so that an upgrade that changes it fails loudly, by name,
instead of silently losing a limit or a drain:

- cli.DrainingServer clears `Server._captured_signals`, or uvicorn re-raises
  SIGTERM at exit after pea's own graceful drain;
- http_limits.LimitedHttpToolsProtocol overrides httptools callbacks and uses
  the protocol's `loop` and `transport`;
- connection.transport_of reaches the TCP transport through Starlette's
  `WebSocket._receive`, bound to uvicorn's `WebSocketsSansIOProtocol.receive`.

pyproject.toml pins the uvicorn versions this was tested with.
"""

from __future__ import annotations

import inspect

import uvicorn
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

HTTPTOOLS_METHODS = (
    "connection_made",
    "connection_lost",
    "data_received",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "send_400_response",
)


class IncompatibleUvicorn(RuntimeError):
    pass


def problems() -> list[str]:
    found: list[str] = []
    # log_config=None: a Config installs uvicorn's logging otherwise, over pea's.
    server = uvicorn.Server(uvicorn.Config(app=None, log_config=None))  # type: ignore[arg-type]
    if not isinstance(getattr(server, "_captured_signals", None), list):
        found.append("uvicorn.Server has no list `_captured_signals` (used to drain on SIGTERM)")
    for name in HTTPTOOLS_METHODS:
        if not callable(getattr(HttpToolsProtocol, name, None)):
            found.append(f"HttpToolsProtocol.{name} is gone (pea.http_limits overrides it)")
    init = inspect.getsource(HttpToolsProtocol.__init__)
    if "self.loop" not in init:
        found.append("HttpToolsProtocol no longer sets `self.loop` (pea.http_limits uses it)")
    made = inspect.getsource(WebSocketsSansIOProtocol.connection_made)
    if not callable(getattr(WebSocketsSansIOProtocol, "receive", None)) or (
        "self.transport" not in made
    ):
        found.append(
            "WebSocketsSansIOProtocol.receive/transport changed (pea.connection resets "
            "stuck peers through them)"
        )

    async def receive() -> dict[str, str]:
        return {}

    ws = WebSocket({"type": "websocket", "path": "/ws", "headers": []}, receive, receive)  # type: ignore[arg-type]
    if getattr(ws, "_receive", None) is not receive:
        found.append("starlette's WebSocket no longer keeps `_receive` (pea.connection uses it)")
    return found


def check() -> None:
    """Raise IncompatibleUvicorn naming everything pea relies on that is gone."""
    found = problems()
    if found:
        raise IncompatibleUvicorn(
            f"uvicorn {uvicorn.__version__} is not one pea was tested with: "
            + "; ".join(found)
            + ". Install the uvicorn version pinned in pyproject.toml."
        )
