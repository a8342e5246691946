"""A NAT lab in network namespaces: two homes behind home routers, and an "internet".

    home-a 192.0.2.2 ---- 192.0.2.1 [nat-a] 203.0.113.2 ----+
                                                            +-- br0 [inet] 203.0.113.1
    home-b 198.51.100.2 - 198.51.100.1 [nat-b] 203.0.113.3 -+   coturn on .10 and .11
                                                                pea nodes on .20, .21, .22

Only documentation ranges, only inside namespaces named after this process, wired
only to each other: `inet` has no default route, so nothing reaches a real network.
The routers are the kernel's own NAT: MASQUERADE keeping the source port (endpoint-
independent mapping, where hole punching works) or `--random-fully` (a new port for
every destination: symmetric, where it cannot). Like real home routers they drop
every unsolicited packet from the WAN. `share_nat` rewires both homes behind router
a (two customers of one carrier NAT that do not reach each other's network).

Everything a test starts in the lab runs as `ip netns exec NS …` under a PID of its
own (see `Lab.start`); code that must run inside a namespace in this process (a
browser driver, an HTTP check) runs on a thread that entered it (`NetnsThread`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.procs import Proc

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)

INET_GW = "203.0.113.1"
STUN_IPS = ("203.0.113.10", "203.0.113.11")
NODE_IPS = ("203.0.113.20", "203.0.113.21", "203.0.113.22")
SINK_IP, SINK_GW, SINK_MAC = "203.0.113.249", "203.0.113.250", "02:00:5e:00:53:99"

# NAT behaviours a router can have (the iptables target of its POSTROUTING rule).
EIM = "eim"  # endpoint-independent mapping, port-preserving
SYMMETRIC = "symmetric"  # address- and port-dependent mapping
NAT_RULES = {EIM: ["-j", "MASQUERADE"], SYMMETRIC: ["-j", "MASQUERADE", "--random-fully"]}


def run(*argv: str, ns: str | None = None, check: bool = True) -> str:
    """One command, in namespace `ns` when given; bounded, its output returned."""
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def enter_netns(ns: str) -> None:
    """Move the calling thread (only it) into namespace `ns`; what it spawns lives there."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _LIBC.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NetnsThread:
    """One thread living in a namespace: everything submitted runs there, in order (a
    Playwright driver started on it is spawned there, and stays on its thread)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.pool = ThreadPoolExecutor(1, f"netns-{ns}", initializer=enter_netns, initargs=(ns,))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.pool.submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 120) -> T:
        return self.submit(fn, *args).result(timeout)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str] | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (OSError, urllib.error.URLError):
        return None


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: f"pea-nat-{os.getpid()}")
    procs: list[Proc] = field(default_factory=list)
    threads: dict[str, NetnsThread] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)
    nat: dict[str, str] = field(default_factory=dict)
    shared: bool = False

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    # -- building ------------------------------------------------------------------

    def _add_ns(self, role: str) -> str:
        name = self.ns(role)
        run("ip", "netns", "add", name)
        self.made.append(name)
        # `ip netns exec` shows this as /etc/resolv.conf: a look-up fails at once, inside.
        etc = Path("/etc/netns", name)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        for setting in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
            run("sysctl", "-qw", setting, ns=name)
        run("ip", "link", "set", "lo", "up", ns=name)
        return name

    def _veth(self, a: str, a_if: str, b: str, b_if: str) -> None:
        # Made directly inside the namespaces: no lab interface ever exists in ours.
        run("ip", "link", "add", "name", a_if, "netns", a, "type", "veth",
            "peer", "name", b_if, "netns", b)  # fmt: skip
        run("ip", "link", "set", a_if, "up", ns=a)
        run("ip", "link", "set", b_if, "up", ns=b)

    def build(self) -> None:
        before = set(socket.if_nameindex())
        inet = self._add_ns("inet")
        run("ip", "link", "add", "br0", "type", "bridge", ns=inet)
        run("ip", "link", "set", "br0", "up", ns=inet)
        for ip in (INET_GW, *STUN_IPS, *NODE_IPS):
            run("ip", "addr", "add", f"{ip}/24", "dev", "br0", ns=inet)
        # Packets to the homes' private ranges vanish silently (a neighbour nobody is),
        # as on the internet: an error instead would make coturn drop allocations.
        self._veth(inet, "sink0", inet, "sink1")
        run("ip", "addr", "add", f"{SINK_IP}/32", "dev", "sink0", ns=inet)
        run("ip", "neigh", "add", SINK_GW, "lladdr", SINK_MAC, "dev", "sink0",
            "nud", "permanent", ns=inet)  # fmt: skip
        for net in ("192.0.2.0/24", "198.51.100.0/24"):
            run("ip", "route", "add", net, "via", SINK_GW, "dev", "sink0", "onlink", ns=inet)
        for side, wan, lan_net in (
            ("a", "203.0.113.2", "192.0.2"),
            ("b", "203.0.113.3", "198.51.100"),
        ):
            router, home = self._add_ns(f"nat-{side}"), self._add_ns(f"home-{side}")
            self._veth(router, "wan0", inet, f"to-nat-{side}")
            run("ip", "link", "set", f"to-nat-{side}", "master", "br0", ns=inet)
            run("ip", "addr", "add", f"{wan}/24", "dev", "wan0", ns=router)
            run("ip", "route", "add", "default", "via", INET_GW, ns=router)
            run("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=router)
            self._veth(router, f"lan-{side}", home, "eth0")
            run("ip", "addr", "add", f"{lan_net}.1/24", "dev", f"lan-{side}", ns=router)
            run("ip", "addr", "add", f"{lan_net}.2/24", "dev", "eth0", ns=home)
            run("ip", "route", "add", "default", "via", f"{lan_net}.1", ns=home)
            self._firewall(router)
            self.set_nat(side, EIM)
        leaked = set(socket.if_nameindex()) - before
        assert not leaked, f"lab interfaces leaked into the test's namespace: {leaked}"

    def _firewall(self, router: str) -> None:
        """A home router's: nothing unsolicited from the WAN, to it or through it."""
        for chain in ("INPUT", "FORWARD"):
            run("iptables", "-A", chain, "-i", "wan0", "-m", "conntrack",
                "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT", ns=router)  # fmt: skip
            run("iptables", "-A", chain, "-i", "wan0", "-j", "DROP", ns=router)

    # -- reconfiguring -------------------------------------------------------------

    def set_nat(self, side: str, behaviour: str) -> None:
        router = self.ns(f"nat-{side}")
        run("iptables", "-t", "nat", "-F", "POSTROUTING", ns=router)
        run("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0",
            *NAT_RULES[behaviour], ns=router)  # fmt: skip
        self.nat[side] = behaviour
        self.forget()

    def forget(self) -> None:
        """Every router forgets its mappings: the next case starts from a clean slate."""
        for side in ("a", "b"):
            run("conntrack", "-F", ns=self.ns(f"nat-{side}"), check=False)

    def share_nat(self, shared: bool) -> None:
        """Both homes behind router a (shared=True), or each behind its own again.

        Home b's cable moves to router a, whose firewall keeps the two home networks
        apart (two customers of one carrier NAT): they meet only through its WAN address.
        """
        if shared == self.shared:
            return
        home_b, nat_a, nat_b = self.ns("home-b"), self.ns("nat-a"), self.ns("nat-b")
        old_router, new_router = (nat_b, nat_a) if shared else (nat_a, nat_b)
        run("ip", "link", "del", "eth0", ns=home_b)  # its peer goes with it
        self._veth(new_router, "lan-b", home_b, "eth0")
        run("ip", "addr", "add", "198.51.100.1/24", "dev", "lan-b", ns=new_router)
        run("ip", "addr", "add", "198.51.100.2/24", "dev", "eth0", ns=home_b)
        run("ip", "route", "add", "default", "via", "198.51.100.1", ns=home_b)
        if shared:
            for a, b in (("lan-a", "lan-b"), ("lan-b", "lan-a")):
                run("iptables", "-I", "FORWARD", "-i", a, "-o", b, "-j", "DROP", ns=nat_a)
        else:
            for a, b in (("lan-a", "lan-b"), ("lan-b", "lan-a")):
                run("iptables", "-D", "FORWARD", "-i", a, "-o", b, "-j", "DROP", ns=nat_a)
        del old_router
        self.shared = shared
        self.forget()

    def block_udp(self, blocked: bool) -> None:
        """Both routers let no UDP out (some offices, hotels and campus networks): only TCP,
        so no STUN answer and no direct path."""
        for side in ("a", "b"):
            action = "-I" if blocked else "-D"
            run("iptables", action, "FORWARD", "-i", f"lan-{side}", "-o", "wan0", "-p", "udp",
                "-j", "DROP", ns=self.ns(f"nat-{side}"))  # fmt: skip
        self.forget()

    # -- running things inside -------------------------------------------------------

    def start(
        self, role: str, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> Proc:
        proc = Proc(name, ["ip", "netns", "exec", self.ns(role), *argv], env)
        self.procs.append(proc)
        proc.start()
        return proc

    def thread(self, role: str) -> NetnsThread:
        if role not in self.threads:
            self.threads[role] = NetnsThread(self.ns(role))
        return self.threads[role]

    def get(self, role: str, url: str) -> tuple[int, str] | None:
        """An HTTP GET from inside namespace `role`."""
        return self.thread(role).call(http_get, url)

    # -- tearing down ------------------------------------------------------------------

    def close(self) -> None:
        for thread in self.threads.values():
            with contextlib.suppress(Exception):
                thread.close()
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(10)
                proc.remove_log()
        for name in reversed(self.made):
            run("ip", "netns", "del", name, check=False)
            shutil.rmtree(Path("/etc/netns", name), ignore_errors=True)


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    try:
        the_lab.build()
        yield the_lab
    finally:
        the_lab.close()


def log_tail(path: Path | None, chars: int = 3000) -> str:
    if path is None:
        return ""
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:]
    return ""
