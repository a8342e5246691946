"""uvicorn's httptools protocol with the two limits it lacks when a node is
reached directly: a deadline for a request's headers, and a cap on their size.

Without them a client holds a socket forever by sending nothing, or a header
byte every few seconds, and httptools buffers a header of any size. h11 caps
the size (`h11_max_incomplete_event_size`) but has no header deadline either,
and costs more CPU per request than httptools.

- The deadline runs from the connection's first byte wait (and from the first
  byte of each later keep-alive request) to the end of the headers: past it the
  client gets 408 and the socket is closed. Between requests uvicorn's own
  keep-alive timeout applies.
- The size counts the request line and headers as they arrive; past the cap the
  client gets 431 and the socket is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _response(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


TIMEOUT_RESPONSE = _response(b"408 Request Timeout", b"Request headers took too long.\n")
TOO_LARGE_RESPONSE = _response(
    b"431 Request Header Fields Too Large", b"Request headers are too large.\n"
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    # Set by `limited_protocol`: a class per server, so settings need no globals.
    header_timeout: float = 10.0
    max_header_bytes: int = 16384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0  # bytes received while in the headers, whole chunks
        self._counted = 0  # request line and headers as parsed
        self._in_headers = True
        self._refused = False

    # -- the deadline ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        self._refuse(TIMEOUT_RESPONSE)

    # -- the size ----------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_headers:
            # Counting whole chunks before parsing bounds what httptools buffers;
            # the exact count (below) decides when the headers end in this chunk.
            self._header_bytes += len(data)
            self._arm()
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes and not self._refused:
            self._refuse(TOO_LARGE_RESPONSE)

    def on_message_begin(self) -> None:
        self._in_headers = True
        self._header_bytes = 0
        self._counted = 0
        self._arm()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._counted += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._counted += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        self._header_bytes = 0
        if self._counted > self.max_header_bytes:
            self._refuse(TOO_LARGE_RESPONSE)
            raise _Refused
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    def _refuse(self, response: bytes) -> None:
        self._refused = True
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()


class _Refused(Exception):
    """Stops httptools mid-chunk; its callback error surfaces as HttpParserError."""


def limited_protocol(header_timeout: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    return type(
        "LimitedHttpToolsProtocol",
        (LimitedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )
