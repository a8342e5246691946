"""Browsers inside a netlab host's network namespace, driven by Playwright from the test's.

Chromium: Playwright talks to it over pipes (its stdin and stdout), which cross namespaces,
so a wrapper that starts it under `ip netns exec` is all it takes.

Firefox: Playwright drives it over WebDriver BiDi, a WebSocket that Firefox opens on its
own loopback, on the port it is given (Playwright asks for any: `--remote-debugging-port=0`),
and then prints. In another namespace that loopback is not the test's. So the wrapper gives
Firefox a fixed port, and a forwarder listens on that port on the test's loopback and joins
each connection to the same port on the browser's loopback, through a socket made by a
thread that entered the browser's namespace (`setns` moves only the calling thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, FIREFOX, FIREFOX_PREFS
from tests.support.netlab import Host

CLONE_NEWNET = 0x40000000
CONNECT_S = 10.0  # Firefox already listens when Playwright connects: this is only a bound


# Checked in a lab host with Firefox 153: loopback ICE is not needed here (the namespace
# has a real link with a default route; the pref only adds a useless 127.0.0.1 candidate).
# The media permission is: without it Firefox hides its host candidates behind mDNS names,
# which nothing in the lab resolves. The origin is plain HTTP on a lab address: allow-listed
# as secure, as the HTTPS it stands for, so downloads stream through the service worker.
def firefox_prefs(origin_host: str) -> dict[str, Any]:
    return {
        **FIREFOX_PREFS,
        "media.peerconnection.ice.loopback": False,
        "dom.securecontext.allowlist": origin_host,
    }


def _enter_namespace(ns: str) -> None:
    """Move the calling thread (only it) into the named network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {ns}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Forwarder:
    """127.0.0.1:port here → 127.0.0.1:port inside namespace `ns`, for every connection."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.5)  # so the accept loop sees close() soon
        self.port: int = self.listener.getsockname()[1]
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, name=f"fwd-{ns}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            client.settimeout(None)
            self._keep(client)
            threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _keep(self, s: socket.socket) -> None:
        with self.lock:
            self.sockets.append(s)
        if self.closed.is_set():
            s.close()

    def _join(self, client: socket.socket) -> None:
        """In a thread of its own, moved into the browser's namespace for good (it ends
        with the connection): connect there, then copy the browser's side to the client."""
        try:
            _enter_namespace(self.ns)
            upstream = socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_S)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._keep(upstream)
        threading.Thread(target=_copy, args=(client, upstream), daemon=True).start()
        _copy(upstream, client)

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def _copy(src: socket.socket, dst: socket.socket) -> None:
    """Until `src` ends (or either side is closed), then tell `dst` nothing more comes."""
    with contextlib.suppress(OSError):
        while data := src.recv(1 << 16):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class NamespaceBrowsers:
    """Launches browsers inside lab hosts; close() ends them and their forwarders."""

    def __init__(self, pw: Any, folder: Path) -> None:
        self.pw = pw
        self.folder = folder
        self.browsers: list[Any] = []
        self.forwarders: list[Forwarder] = []

    def launch(
        self, engine: str, host: Host, origin: str, *, name: str = "", timeout_ms: int = 30000
    ) -> Any:
        """A headless browser of `engine` in `host`'s namespace that treats `origin` (plain
        HTTP on a lab address) as secure. `name` tells the wrapper scripts apart."""
        tag = f"{host.ns}-{engine}{name}"
        downloads = self.folder  # the lab removes what is left there
        if engine == "chromium":
            if CHROMIUM is None:
                raise RuntimeError("Debian chromium is not installed")
            browser = self.pw.chromium.launch(
                executable_path=host.wrapper(CHROMIUM, self.folder),
                args=[*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={origin}"],
                downloads_path=str(downloads),
                timeout=timeout_ms,
            )
        elif engine == "firefox":
            if FIREFOX is None:
                raise RuntimeError("Debian firefox-esr is not installed")
            fwd = Forwarder(host.ns)
            self.forwarders.append(fwd)
            port = f"--remote-debugging-port={fwd.port}"
            wrapper = _script(
                self.folder / f"{tag}.sh",
                "for a do\n  shift\n"
                f'  case "$a" in --remote-debugging-port=*) a={port} ;; esac\n'
                '  set -- "$@" "$a"\ndone\n'
                f'exec ip netns exec {host.ns} {FIREFOX} "$@"\n',
            )
            browser = self.pw.firefox.launch(
                channel="moz-firefox",
                executable_path=wrapper,
                headless=True,
                firefox_user_prefs=firefox_prefs(origin.split("//", 1)[1].split(":", 1)[0]),
                downloads_path=str(downloads),
                timeout=timeout_ms,
            )
        else:
            raise ValueError(f"unknown browser engine {engine!r}")
        self.browsers.append(browser)
        return browser

    def close(self) -> None:
        while self.browsers:
            with contextlib.suppress(Exception):
                self.browsers.pop().close()
        while self.forwarders:
            self.forwarders.pop().close()
