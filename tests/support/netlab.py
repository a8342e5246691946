"""Browsers in network namespaces of their own, joined to the test's namespace (where the
pea nodes run) by veth pairs, so a test can break a browser's network for real: take its
link down, or move it to another address. Documentation address ranges only; every
namespace's name carries this process's pid and is removed on exit, even on failure.

Topology (the test's namespace routes between the browsers, as the internet would):

    [pea-…-sharer]   eth0 198.51.100.2/24 -- 198.51.100.1 hN --+
                                                                [test ns] nodes on 192.0.2.1 (lo)
    [pea-…-receiver] eth0 203.0.113.2/24  -- 203.0.113.1  hN --+
                     eth1 192.0.2.66/26   -- 192.0.2.65   hN'  (after move())
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SERVER_ADDRESS = "192.0.2.1"  # the nodes, on the test namespace's lo: reachable over any link
# (browser address, test-side gateway, prefix) per browser, then the receiver's second network.
NETWORKS = [("198.51.100.2", "198.51.100.1", 24), ("203.0.113.2", "203.0.113.1", 24)]
MOVED_TO = ("192.0.2.66", "192.0.2.65", 26)
_counter = itertools.count(1)


def ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def namespaces_supported() -> str | None:
    """Why browsers cannot get namespaces of their own here, or None when they can."""
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"`ip netns` does not work here ({e})"
    return None


@dataclass
class Host:
    """One browser's namespace and the test-side end of its current link."""

    ns: str
    link: str  # the veth end in the test namespace
    address: str
    gateway: str
    extra_links: list[str] = field(default_factory=list)

    def wrapper(self, binary: str, folder: Path) -> str:
        """An executable that runs `binary` inside this namespace (Playwright launches it)."""
        path = folder / f"{self.ns}.sh"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.ns} {binary} "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return str(path)


class Lab:
    def __init__(self, tag: str) -> None:
        self.prefix = f"pea-{tag}-{os.getpid()}-{next(_counter)}"
        self.hosts: list[Host] = []
        self.test_links: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix=self.prefix + "-"))
        self.added_server_address = False

    def setup_hub(self) -> None:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1\n")
        try:
            ip("addr", "add", f"{SERVER_ADDRESS}/32", "dev", "lo")
            self.added_server_address = True
        except subprocess.CalledProcessError:
            pass  # already there (an earlier lab in this namespace)

    def _link(self, ns: str, inner: str, address: str, gateway: str, prefix: int) -> str:
        outer = f"v{os.getpid() % 100000}x{next(_counter)}"  # ≤ 15 characters, unique here
        ip("link", "add", "name", outer, "type", "veth", "peer", "name", inner, "netns", ns)
        self.test_links.append(outer)
        ip("addr", "add", f"{gateway}/{prefix}", "dev", outer)
        ip("link", "set", outer, "up")
        ip("addr", "add", f"{address}/{prefix}", "dev", inner, ns=ns)
        ip("link", "set", inner, "up", ns=ns)
        return outer

    def add_host(self, role: str) -> Host:
        address, gateway, prefix = NETWORKS[len(self.hosts)]
        ns = f"{self.prefix}-{role}"
        ip("netns", "add", ns)
        host = Host(ns=ns, link="", address=address, gateway=gateway)
        self.hosts.append(host)
        ip("link", "set", "lo", "up", ns=ns)
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        host.link = self._link(ns, "eth0", address, gateway, prefix)
        ip("route", "add", "default", "via", gateway, ns=ns)
        return host

    def set_link(self, host: Host, up: bool) -> None:
        """Take the host's link down (both directions stop) or bring it back up."""
        ip("link", "set", host.link, "up" if up else "down")

    def move(self, host: Host) -> None:
        """The host switches networks: a new link with a new address becomes its route
        out, and the old link (with its address) is removed."""
        address, gateway, prefix = MOVED_TO
        old = host.link
        host.link = self._link(host.ns, "eth1", address, gateway, prefix)
        ip("route", "replace", "default", "via", gateway, "dev", "eth1", ns=host.ns)
        ip("link", "del", old)  # removes both ends, and eth0's address with it
        self.test_links.remove(old)
        host.address, host.gateway = address, gateway

    def close(self) -> None:
        for link in self.test_links:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("link", "del", link)
        for host in self.hosts:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("netns", "del", host.ns)
        if self.added_server_address:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip("addr", "del", f"{SERVER_ADDRESS}/32", "dev", "lo")
        for f in self.folder.iterdir():
            f.unlink()
        self.folder.rmdir()


@contextlib.contextmanager
def lab(tag: str) -> Iterator[Lab]:
    the_lab = Lab(tag)
    try:
        the_lab.setup_hub()
        yield the_lab
    finally:
        the_lab.close()
