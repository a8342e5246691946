"""`pea doctor [URL]`: checks a deployment the way a browser will use it, from here.

The page, whether browsers treat it as a secure context, the WebSocket upgrade
through whatever proxy is in front (with the page's Origin, and that a foreign one
is refused), then what the node tells clients: STUN reachability and this host's
NAT behaviour (the same local port asked from two STUN addresses: one mapping
means hole punching can work, two mean a symmetric NAT), and TURN credentials,
by allocating a relay with them. Each check says what is wrong and what to do.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException
from websockets.sync.client import connect
from websockets.typing import Origin

from pea import stun

OK, WARN, FAIL, INFO = "ok", "warn", "FAIL", "info"
FOREIGN_ORIGIN = "https://pea-doctor.invalid"


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    detail: str

    def line(self) -> str:
        return f"{self.status:>4}  {self.what}: {self.detail}"


def _local_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_ice_url(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, transport) of a stun:/turn: URL (RFC 7064/7065), or None."""
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme not in {"stun", "stuns", "turn", "turns"} or not rest:
        return None
    rest, _, query = rest.partition("?")
    transport = "tcp" if scheme.endswith("s") else "udp"
    for part in query.split("&"):
        if part.startswith("transport="):
            transport = part.split("=", 1)[1].lower()
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = rest.partition(":")
    try:
        port = int(port_text) if port_text else (5349 if scheme.endswith("s") else 3478)
    except ValueError:
        return None
    return scheme, host, port, transport


class Doctor:
    def __init__(self, url: str, timeout: float = 5.0, origin: str | None = None) -> None:
        url = url.rstrip("/")
        if "://" not in url:
            url = "https://" + url
        parts = urlsplit(url)
        self.url = url
        self.parts = parts
        self.origin = origin or f"{parts.scheme}://{parts.netloc}"
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.ws_url = f"{ws_scheme}://{parts.netloc}{parts.path}/ws"
        self.timeout = timeout
        self.checks: list[Check] = []
        self.config: dict[str, Any] = {}

    def add(self, status: str, what: str, detail: str) -> None:
        self.checks.append(Check(status, what, detail))

    @property
    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def run(self) -> list[Check]:
        self.page()
        self.secure_context()
        if self.websocket():
            self.foreign_origin()
            self.ice()
        return self.checks

    # -- the page and the WebSocket ------------------------------------------------

    def page(self) -> None:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=self.timeout) as resp:
                body = resp.read(65536)
                status = resp.status
        except urllib.error.HTTPError as exc:
            self.add(FAIL, "page", f"{self.url}/ answered HTTP {exc.code}")
            return
        except (OSError, urllib.error.URLError) as exc:
            self.add(FAIL, "page", f"cannot reach {self.url}/ ({_reason(exc)})")
            return
        if b"<html" not in body.lower() and b"<!doctype" not in body.lower():
            self.add(WARN, "page", f"{self.url}/ answered {status} but not with a page")
        else:
            self.add(OK, "page", f"{self.url}/ answers {status}")

    def secure_context(self) -> None:
        host = self.parts.hostname or ""
        if self.parts.scheme == "https":
            self.add(OK, "secure context", "HTTPS: browsers stream downloads to disk")
        elif _local_host(host):
            self.add(OK, "secure context", f"{host} is local: browsers treat it as secure")
        else:
            self.add(
                WARN,
                "secure context",
                f"plain HTTP on {host}: browsers keep each download in memory until it is "
                "complete (large files fail). Serve pea over HTTPS (a reverse proxy, or "
                "--tls-cert/--tls-key).",
            )

    def _open(self, origin: str) -> Any:
        ctx = ssl.create_default_context() if self.ws_url.startswith("wss:") else None
        return connect(
            self.ws_url, origin=Origin(origin), open_timeout=self.timeout, close_timeout=1, ssl=ctx
        )

    def websocket(self) -> bool:
        room = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        try:
            with self._open(self.origin) as ws:
                ws.send(f'{{"type":"join","room":"{room}","name":"pea doctor"}}')
                welcome = json.loads(ws.recv(timeout=self.timeout))
                if welcome.get("type") != "welcome":
                    self.add(FAIL, "WebSocket", f"joined, but the node answered {welcome}")
                    return False
                self.config = welcome.get("config") or {}
                ws.send('{"type":"leave"}')
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == 403:
                self.add(
                    FAIL,
                    "origin",
                    f"{self.origin} is not allowed to open {self.ws_url}: set --public-url "
                    "to the URL people open (or add it to --allowed-origins)",
                )
            else:
                self.add(
                    FAIL,
                    "WebSocket",
                    f"{self.ws_url} answered HTTP {code} instead of upgrading: the proxy "
                    "must pass the Upgrade and Connection headers to pea (HTTP/1.1)",
                )
            return False
        except InvalidHandshake as exc:
            self.add(
                FAIL,
                "WebSocket",
                f"{self.ws_url}: {_reason(exc)}: a proxy in front of pea must pass WebSocket "
                "upgrades (HTTP/1.1, the Upgrade and Connection headers)",
            )
            return False
        except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
            self.add(FAIL, "WebSocket", f"{self.ws_url}: {_reason(exc)}")
            return False
        version = self.config.get("protocol", "1.0")
        self.add(OK, "WebSocket", f"{self.ws_url} upgraded; joined a room (protocol {version})")
        self.add(OK, "origin", f"{self.origin} is allowed")
        return True

    def foreign_origin(self) -> None:
        try:
            with self._open(FOREIGN_ORIGIN):
                pass
        except InvalidStatus as exc:
            if exc.response.status_code == 403:
                self.add(OK, "foreign origin", f"{FOREIGN_ORIGIN} is refused (403)")
                return
            self.add(WARN, "foreign origin", f"answered HTTP {exc.response.status_code}")
            return
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.add(WARN, "foreign origin", f"could not tell ({_reason(exc)})")
            return
        self.add(
            WARN,
            "foreign origin",
            f"{FOREIGN_ORIGIN} may open the WebSocket too: any web site can then use this "
            "node for signalling (--allowed-origins '*', or a proxy rewriting Origin)",
        )

    # -- what the node tells browsers about ICE -------------------------------------

    def ice(self) -> None:
        servers = self.config.get("ice_servers") or []
        relay = self.config.get("relay", "off")
        stun_targets: list[tuple[str, stun.Address]] = []
        turns: list[tuple[str, stun.Address, str, str]] = []
        for server in servers if isinstance(servers, list) else []:
            urls = server.get("urls") if isinstance(server, dict) else None
            for url in [urls] if isinstance(urls, str) else list(urls or []):
                parsed = parse_ice_url(str(url))
                if parsed is None:
                    self.add(WARN, "ICE server", f"cannot read {url!r}")
                    continue
                scheme, host, port, transport = parsed
                if transport != "udp":
                    self.add(INFO, "ICE server", f"{url}: only UDP is checked here")
                    continue
                address = self._resolve(url, host, port)
                if address is None:
                    continue
                if scheme == "stun":
                    stun_targets.append((str(url), address))
                else:
                    stun_targets.append((str(url), address))  # a TURN server answers STUN too
                    turns.append(
                        (str(url), address, str(server.get("username", "")),
                         str(server.get("credential", "")))
                    )  # fmt: skip
        if not stun_targets:
            self.add(
                WARN,
                "STUN",
                "the node offers no STUN server: browsers behind NAT cannot find their "
                "public address and connect only on the same network (--ice-servers)",
            )
        else:
            self.nat(stun_targets)
        self.add(INFO, "relay", f"TURN is {relay} on this node")
        for url, address, username, credential in turns:
            self.turn(url, address, username, credential)

    def _resolve(self, url: str, host: str, port: int) -> stun.Address | None:
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            self.add(FAIL, "ICE server", f"{url}: cannot resolve {host} ({_reason(exc)})")
            return None
        ip, resolved_port = infos[0][4][:2]
        return str(ip), int(resolved_port)

    def nat(self, targets: list[tuple[str, stun.Address]]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("0.0.0.0", 0))
            first_url, first = targets[0]
            try:
                reply = stun.binding(sock, first, self.timeout)
            except (stun.StunError, OSError) as exc:
                self.add(
                    FAIL,
                    "STUN",
                    f"{first_url}: {_reason(exc)}; UDP to it may be blocked from here",
                )
                return
            mine = stun.mapped(reply)
            self.add(OK, "STUN", f"{first_url} answers; it sees this host as {_addr(mine)}")
            # A second vantage point: another configured server on another address, or the
            # first server's other address and port (RFC 5780 OTHER-ADDRESS).
            second: tuple[str, stun.Address] | None = next(
                ((u, a) for u, a in targets[1:] if a[0] != first[0]), None
            )
            other = reply.address(stun.OTHER_ADDRESS)
            if second is None and other is not None and other[0] != first[0]:
                second = (f"its other address {_addr(other)}", other)
            if second is None:
                self.add(
                    INFO,
                    "NAT",
                    "one STUN address only: cannot tell how this host's NAT maps",
                )
                return
            local = (_route_source(first), int(sock.getsockname()[1]))
            try:
                again = stun.mapped(stun.binding(sock, second[1], self.timeout))
            except (stun.StunError, OSError) as exc:
                self.add(WARN, "NAT", f"{second[0]}: {_reason(exc)}: cannot tell the mapping")
                return
        if mine == again == local:
            self.add(OK, "NAT", f"none: STUN sees this host's own {_addr(local)}")
        elif mine == again:
            self.add(
                OK,
                "NAT",
                f"endpoint-independent mapping (the same {_addr(mine)} toward both STUN "
                "addresses): direct connections can be made from here",
            )
        else:
            self.add(
                WARN,
                "NAT",
                f"symmetric: a new mapping per destination ({_addr(mine)}, then "
                f"{_addr(again)}). Direct connections to peers behind another symmetric or "
                "port-restricted NAT will fail; only a TURN relay reaches them",
            )

    def turn(self, url: str, address: stun.Address, username: str, credential: str) -> None:
        if not username or not credential:
            self.add(WARN, "TURN", f"{url}: the node sends no credentials for it")
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("0.0.0.0", 0))
            try:
                relayed = stun.turn_allocate(sock, address, username, credential, self.timeout)
            except (stun.StunError, OSError) as exc:
                self.add(
                    FAIL,
                    "TURN",
                    f"{url}: {_reason(exc)}. The node's --turn-secret must be the TURN "
                    "server's static-auth-secret (coturn: use-auth-secret), and the clocks "
                    "must agree",
                )
                return
        self.add(OK, "TURN", f"{url}: the node's credentials allocate a relay ({_addr(relayed)})")


def _addr(address: stun.Address | None) -> str:
    return f"{address[0]}:{address[1]}" if address else "(no address in the answer)"


def _route_source(server: stun.Address) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(server)
        return str(probe.getsockname()[0])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def run(url: str, timeout: float, origin: str | None, out: Callable[[str], None] = print) -> int:
    """Run every check, print one line each; 0 if none failed, 1 otherwise."""
    doctor = Doctor(url, timeout, origin)
    out(f"pea doctor {doctor.url}")
    for check in doctor.run():
        out(check.line())
    return 1 if doctor.failed else 0
