"""Transfer benchmark: a bare data-channel harness against pea's full path.

Bare harness: one RTCDataChannel, SDP exchanged by this script, the sender repeats one
in-memory buffer (256 KiB messages, up to 4 MiB queued in the channel) and the receiver
only counts bytes: the ceiling for this machine's WebRTC stack.

pea: a real redis-server and two pea nodes; the sharer's browser picks real files, the
receiver's browser opens the link on the other node and downloads them as a person would
(File.slice, SHA-256 on both sides, service-worker streamed download to disk).

Two layouts: sharer and receiver in two Chromium processes (two devices: each side has
its own network process and UDP socket, so the kernel can drop packets between them),
and both pages in one Chromium (one network process carries both sockets).

For each layout, size and side: the median of `--runs` transfers after a warm-up (each
on a new connection, as when a person opens a link; bare and pea runs interleaved so
both see the same load), the time to the first 10 MiB, the longest gap between two
arriving messages (a stall), and per transfer the CPU used by the sharer's and
receiver's browsers, by the pea nodes and Redis, and by every other process on the
machine (so a noisy run can be told apart); UDP datagrams the kernel dropped
(`/proc/net/snmp`, this namespace only); the peer connections' `getStats()` (DTLS
packets sent and received, packets the browser discarded on send). Two-browser layout
only: the receiver's browser memory growth and the time from opening the link to the
file list.

After the browser layouts, the command-line peer's rows (bench/transfer_cli.py: `pea send`
→ Chromium, Chromium → `pea receive`, CLI → CLI; `--no-cli` skips them).

Then the resume row (bench/transfer_resume.py): one download with three 5 s drops of the
receiver's link against the same download without, browsers in namespaces of their own.

Everything runs on loopback in a fresh network namespace: started outside one, the
script re-runs itself under `unshare -n`. Usage:

    .venv/bin/python -m bench.transfer [--quick] [--sizes 64,256,1024] [--runs 3] [--write-docs]
    .venv/bin/python -m bench.transfer --layouts none --resume 1024   # the resume row only
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import transfer_cli
from bench.docs_section import replace as replace_section
from bench.docs_section import shown_command, stamp
from tests.support.browser import CHROMIUM as _CHROMIUM
from tests.support.browser import CHROMIUM_ARGS as ARGS
from tests.support.browser import HIDE_FILE_PICKERS
from tests.support.procs import ROOT

MiB = 1 << 20
CHROMIUM = _CHROMIUM or "/usr/bin/chromium"
FIRST = 10 * MiB  # "time to the first 10 MiB"

# In every page, before its own scripts: remember each peer connection (for getStats) and
# meter the receiver's `get` channels. The meter is one more `message` listener: it notes
# when bytes arrive, the time to the first 10 MiB and the longest gap between two binary
# messages once bytes flow.
INIT = """(() => {
  const MiB = 1 << 20;
  window.__pcs = [];
  window.__meters = [];
  window.__meter = (ch, target) => {
    const m = {created: Date.now(), first: 0, t10: 0, last: 0, gap: 0, gapAt: 0, bytes: 0,
               done: 0, target, msgs: 0, marks: []};
    ch.addEventListener('message', (e) => {
      if (typeof e.data === 'string') return;
      const now = Date.now();
      if (!m.bytes) m.first = now;
      else if (now - m.last > m.gap) { m.gap = now - m.last; m.gapAt = m.bytes; }
      const last = m.marks[m.marks.length - 1];
      if (!last || now - last[0] >= 100) m.marks.push([now, m.bytes]);
      m.last = now; m.msgs++;
      m.bytes += e.data.byteLength;
      if (!m.t10 && m.bytes >= 10 * MiB) m.t10 = now;
      if (!m.done && m.bytes >= m.target) m.done = now;
    });
    window.__meters.push(m);
    return m;
  };
  // The sharer hashes each shared file once, in a worker: count what it still has to do.
  window.__hashing = 0;
  const W = window.Worker;
  if (W) window.Worker = class extends W {
    constructor(url, o) {
      super(url, o);
      if (!String(url).includes('hash-worker')) return;
      this.addEventListener('message', () => { window.__hashing--; });
      const post = this.postMessage.bind(this);
      this.postMessage = (m, t) => { if (m && m.id !== undefined) window.__hashing++; post(m, t); };
    }
  };
  const Orig = window.RTCPeerConnection;
  if (!Orig) return;
  window.RTCPeerConnection = class extends Orig {
    constructor(...a) { super(...a); window.__pcs.push(this); }
    createDataChannel(label, opts) {
      const ch = super.createDataChannel(label, opts);
      if (label === 'get') window.__meter(ch, Infinity);
      return ch;
    }
  };
})();"""

BARE_OFFER = """async () => {
  window.pc = new RTCPeerConnection({iceServers: []});
  window.dc = pc.createDataChannel('bench', {ordered: true});
  await pc.setLocalDescription(await pc.createOffer());
  while (pc.iceGatheringState !== 'complete') await new Promise(r => setTimeout(r, 20));
  return pc.localDescription.sdp;
}"""
BARE_ANSWER = """async (offer) => {
  window.pc = new RTCPeerConnection({iceServers: []});
  pc.ondatachannel = (e) => { e.channel.binaryType = 'arraybuffer'; window.dc = e.channel; };
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  while (pc.iceGatheringState !== 'complete') await new Promise(r => setTimeout(r, 20));
  return pc.localDescription.sdp;
}"""
# The fixed policy pea's sender had before its window adapted: 256 KiB messages, pause
# above 4 MiB buffered, resume below 1 MiB.
BARE_SEND = """async (total) => {
  const chunk = Math.max(16384, Math.min(pc.sctp.maxMessageSize || 65536, 262144));
  const buf = new Uint8Array(chunk);
  crypto.getRandomValues(buf.subarray(0, 65536));
  dc.bufferedAmountLowThreshold = 1 << 20;
  const start = Date.now();
  let sent = 0;
  while (sent < total) {
    if (dc.bufferedAmount > (4 << 20)) await new Promise(r => { dc.onbufferedamountlow = r; });
    const n = Math.min(chunk, total - sent);
    dc.send(n === chunk ? buf : buf.subarray(0, n));
    sent += n;
  }
  return start;
}"""

# Numeric getStats fields summed over this page's peer connections, by report type
# (the selected candidate pair only). A closed connection reports nothing, so it counts
# with its last figures: otherwise a connection closing mid-transfer (the page's
# previous one) would drop out of the sum and make the deltas negative.
STATS = """async () => {
  const out = {};
  const last = (window.__lastStats ??= new WeakMap());
  for (const pc of window.__pcs) {
    let mine = last.get(pc);
    if (pc.connectionState !== 'closed') {
      mine = {};
      (await pc.getStats()).forEach((s) => {
        if (!['transport', 'candidate-pair', 'data-channel', 'peer-connection'].includes(s.type)
            && !s.type.includes('sctp')) return;
        if (s.type === 'candidate-pair' && !s.nominated) return;
        const o = (mine[s.type] ??= {});
        for (const [k, v] of Object.entries(s))
          if (typeof v === 'number' && k !== 'timestamp') o[k] = (o[k] || 0) + v;
      });
      last.set(pc, mine);
    }
    for (const [type, fields] of Object.entries(mine || {})) {
      const o = (out[type] ??= {});
      for (const [k, v] of Object.entries(fields)) o[k] = (o[k] || 0) + v;
    }
  }
  return out;
}"""

LIST_MARK = """() => new Promise((resolve) => {
  const seen = () => performance.getEntriesByName('pea:files')[0];
  const poll = () => (seen() ? resolve(seen().startTime) : setTimeout(poll, 10));
  poll();
})"""


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def reexec_in_namespace() -> None:
    argv = [sys.executable, "-m", "bench.transfer", *sys.argv[1:]]
    cmd = " ".join(shlex.quote(a) for a in argv)
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up; exec {cmd}"])


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MiB)
            f.write(os.urandom(n))
            left -= n


# --- what the machine did during one transfer -------------------------------------------


def udp_counters() -> dict[str, int]:
    """This namespace's UDP counters (`/proc/net/snmp` is per network namespace)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [ln for ln in lines if ln[0] == "Udp:"][:2]
    return {k: int(v) for k, v in zip(names[1:], values[1:], strict=True)}


def udp_sockets() -> list[dict[str, int]]:
    """Receive buffer size and drops of every UDP socket in this namespace (`ss -uam`)."""
    with suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["ss", "-uamnH"], capture_output=True, text=True, timeout=5).stdout
        socks = []
        for ln in out.splitlines():
            if "skmem:(" not in ln:
                continue
            mem = ln.split("skmem:(", 1)[1].split(")", 1)[0].split(",")
            vals = {m.rstrip("0123456789"): int(m[len(m.rstrip("0123456789")) :]) for m in mem}
            socks.append({"rcvbuf": vals.get("rb", 0), "drops": vals.get("d", 0)})
        return socks
    return []


def busy_seconds() -> float:
    """CPU seconds spent by the whole machine since boot (all cores, not idle/iowait)."""
    f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Tree:
    """A process and its descendants: CPU seconds by process kind, RSS."""

    def __init__(self, root: Any) -> None:
        import psutil

        self.psutil = psutil
        self.root = root

    @classmethod
    def find(cls, marker: str) -> Tree:
        import psutil

        return cls(
            next(
                p
                for p in psutil.process_iter(["cmdline"])
                if marker in (p.info["cmdline"] or [])
                and "--type=" not in " ".join(p.info["cmdline"])
            )
        )

    def procs(self) -> list[Any]:
        with suppress(self.psutil.Error):
            return [self.root, *self.root.children(recursive=True)]
        return []

    def kind(self, p: Any) -> str:
        args = p.cmdline()
        kind = next((a[7:] for a in args if a.startswith("--type=")), "")
        sub = next((a[20:] for a in args if a.startswith("--utility-sub-type=")), "")
        if not kind:
            return "browser" if "--pea-bench" in " ".join(args) else p.name()
        return sub.rsplit(".", 1)[-1] if sub else kind

    def cpu(self) -> dict[int, tuple[str, float]]:
        out: dict[int, tuple[str, float]] = {}
        for p in self.procs():
            with suppress(self.psutil.Error):
                t = p.cpu_times()
                out[p.pid] = (self.kind(p), t.user + t.system)
        return out

    def rss_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.procs():
            with suppress(self.psutil.Error):
                k = self.kind(p)
                out[k] = out.get(k, 0) + p.memory_info().rss
        return out


def cpu_delta(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    out: dict[str, float] = {}
    for pid, (kind, t) in after.items():
        out[kind] = out.get(kind, 0.0) + t - before.get(pid, (kind, 0.0))[1]
    return out


@dataclass
class Watch:
    """CPU, UDP and memory of one transfer, by role (sharer, receiver, server, other)."""

    trees: dict[str, Tree]
    memory_of: Tree | None = None
    out: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def running(self) -> Iterator[dict[str, Any]]:
        me = Tree(__import__("psutil").Process())
        cpu0 = {r: t.cpu() for r, t in self.trees.items()}
        mine0, busy0, udp0, wall0 = me.cpu(), busy_seconds(), udp_counters(), time.monotonic()
        peak: dict[str, Any] = {"peak": 0, "at_peak": {}}
        base = self.memory_of.rss_by_kind() if self.memory_of else {}
        stop = threading.Event()
        socks: list[list[dict[str, int]]] = []

        def sample() -> None:
            n = 0
            while not stop.wait(0.1):
                n += 1
                if n == 20:  # two seconds in: the UDP sockets of the transfer exist
                    socks.append(udp_sockets())
                if self.memory_of:
                    now = self.memory_of.rss_by_kind()
                    if sum(now.values()) > peak["peak"]:
                        peak["peak"] = sum(now.values())
                        peak["at_peak"] = {k: v - base.get(k, 0) for k, v in now.items()}

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        try:
            yield self.out
        finally:
            stop.set()
            t.join()
            wall = time.monotonic() - wall0
            cpu = {r: cpu_delta(cpu0[r], t.cpu()) for r, t in self.trees.items()}
            bench = sum(cpu_delta(mine0, me.cpu()).values())
            udp1 = udp_counters()
            self.out.update(
                wall=wall,
                cpu={r: sum(v.values()) / wall for r, v in cpu.items()},
                cpu_kinds={r: {k: v / wall for k, v in c.items()} for r, c in cpu.items()},
                other=max(0.0, busy_seconds() - busy0 - bench) / wall,
                udp={k: udp1[k] - udp0.get(k, 0) for k in udp1},
                socks=socks[0] if socks else [],
            )
            if self.memory_of:
                self.out["mem_growth"] = max(0, peak["peak"] - sum(base.values()))
                self.out["mem_where"] = peak["at_peak"]


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """after - before, per page (sharer, receiver) and report type."""
    return {
        page: {
            typ: {k: v - before[page].get(typ, {}).get(k, 0) for k, v in fields.items()}
            for typ, fields in reports.items()
        }
        for page, reports in after.items()
    }


# --- browsers and pages ------------------------------------------------------------------


def launch(pw: Any, role: str) -> Any:
    # An unknown switch, ignored by Chromium, so the sampler can find this browser's processes.
    return pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, f"--pea-bench-{role}"])


def new_page(browser: Any) -> Any:
    ctx = browser.new_context(accept_downloads=True)
    ctx.grant_permissions(["microphone"])  # else Chromium gathers no loopback candidate
    ctx.set_default_timeout(600_000)
    ctx.add_init_script(INIT)
    ctx.add_init_script(HIDE_FILE_PICKERS)  # measure the service-worker path every engine has
    return ctx.new_page()


@contextmanager
def browsers(pw: Any, layout: str, what: str) -> Iterator[tuple[Any, Any, dict[str, Tree]]]:
    """The sharer's and the receiver's browser: two processes, or one for both."""
    if layout == "two":
        b1, b2 = launch(pw, f"{what}-sharer"), launch(pw, f"{what}-receiver")
        trees = {
            "sharer": Tree.find(f"--pea-bench-{what}-sharer"),
            "receiver": Tree.find(f"--pea-bench-{what}-receiver"),
        }
    else:
        b1 = b2 = launch(pw, f"{what}-both")
        trees = {"browser": Tree.find(f"--pea-bench-{what}-both")}
    try:
        yield b1, b2, trees
    finally:
        b1.close()
        if b2 is not b1:
            b2.close()


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


def stats(pages: tuple[Any, Any]) -> dict[str, Any]:
    return {"sharer": pages[0].evaluate(STATS), "receiver": pages[1].evaluate(STATS)}


def meter_result(m: dict[str, Any], start: float, size: int) -> dict[str, Any]:
    """Times (s) from the transfer's start, from the receiver's meter."""
    return {
        "first_byte": (m["first"] - start) / 1000 if m["first"] else None,
        "t10": (m["t10"] - start) / 1000 if m["t10"] else None,
        "gap": m["gap"] / 1000,
        "gap_at_mib": m["gapAt"] / MiB,
        "msgs": m["msgs"],
        "bytes": m["bytes"],
        "marks": [[round((t - start) / 1000, 2), round(b / MiB, 1)] for t, b in m["marks"]],
        "size": size,
    }


def bare_transfer(s: Any, r: Any, size: int, watch: Watch) -> dict[str, Any]:
    before = stats((s, r))
    with watch.running() as out:
        r.evaluate("n => { window.__m = window.__meter(window.dc, n); }", size)
        start = s.evaluate(BARE_SEND, size)
        r.wait_for_function("() => window.__m.done > 0", polling=50)
        m = r.evaluate("window.__m")
    out = dict(out)
    out.update(meter_result(m, start, size))
    out["seconds"] = (m["done"] - start) / 1000
    out["stats"] = stats_delta(before, stats((s, r)))
    return out


def bare_connect(b1: Any, b2: Any, url: str) -> tuple[Any, Any]:
    """Two new pages, one new peer connection and its channel, open."""
    s, r = new_page(b1), new_page(b2)
    s.goto(url + "/")
    r.goto(url + "/")
    answer = r.evaluate(BARE_ANSWER, s.evaluate(BARE_OFFER))
    s.evaluate("async (sdp) => { await pc.setRemoteDescription({type: 'answer', sdp}); }", answer)
    s.wait_for_function("() => window.dc.readyState === 'open'")
    r.wait_for_function("() => window.dc && window.dc.readyState === 'open'")
    return s, r


Run = Callable[[int], dict[str, Any]]


@contextmanager
def bare_session(pw: Any, layout: str, warmup: int, reuse: bool) -> Iterator[tuple[Run, Any]]:
    """A connected bare harness, warmed up: yields a function that times one transfer."""
    with (
        tempfile.TemporaryDirectory() as d,
        static_server(Path(d)) as url,
        browsers(pw, layout, "bare") as (b1, b2, trees),
    ):
        Path(d, "index.html").write_text("<!doctype html><title>bare</title>")
        pages = list(bare_connect(b1, b2, url))
        warm = bare_transfer(pages[0], pages[1], warmup, Watch(trees))

        def run(size: int) -> dict[str, Any]:
            if not reuse:  # every run the first transfer of a new connection, as in pea's
                for p in pages:
                    p.context.close()
                pages[:] = bare_connect(b1, b2, url)
            return bare_transfer(pages[0], pages[1], size, Watch(trees))

        yield run, warm


def pea_download(page: Any, sharer: Any, name: str, size: int, watch: Watch) -> dict[str, Any]:
    row = page.locator(f'[data-testid=file][data-name="{name}"]')
    pages = (sharer, page)
    before = stats(pages)
    with watch.running() as out:
        start = page.evaluate("Date.now()")
        t0 = time.perf_counter()
        with page.expect_download() as info:
            row.locator("[data-testid=download]").click()
        dl = info.value
        dl.path()  # returns when the browser has written the whole file
        elapsed = time.perf_counter() - t0
    if dl.failure():
        raise RuntimeError(f"download failed: {dl.failure()}")
    if "verified" not in row.inner_text():
        raise RuntimeError(f"the page did not report {name} verified")
    dl.delete()
    out = dict(out)
    out.update(
        meter_result(page.evaluate("window.__meters[window.__meters.length - 1]"), start, size)
    )
    out["seconds"] = elapsed
    out["stats"] = stats_delta(before, stats(pages))
    return out


@contextmanager
def pea_session(
    pw: Any, layout: str, files: dict[int, Path], warm: Path, list_runs: int, reuse: bool
) -> Iterator[tuple[Run, Any]]:
    """Two nodes, Redis, a sharer sharing `files` and a receiver, warmed up: yields a
    function that times one download, and the warm-up's figures (plus link-to-list)."""
    from tests.support.procs import pea_node, redis_server

    extra: dict[str, Any] = {}
    with (
        redis_server() as redis,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as a,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as b,
        browsers(pw, layout, f"pea-{layout}") as (bs, br, trees),
    ):
        import psutil

        trees = {
            **trees,
            "server": Tree(psutil.Process(redis.pid)),
            "node-a": Tree(psutil.Process(a.pid)),
            "node-b": Tree(psutil.Process(b.pid)),
        }
        sharer = new_page(bs)
        sharer.goto(a.url + "/")
        # Link-to-list is timed on a share of one small file: on this one machine the
        # sharer's background hashing of the large files would otherwise take a core
        # from the receiver's page load, which on two devices it never does.
        tiny = warm.with_name("list-me.txt")
        tiny.write_text("pea\n")
        sharer.locator("input[type=file]").set_input_files([str(tiny)])
        link = sharer.locator("[data-testid=share-link]").get_attribute("href")
        assert link
        url = b.url + "/" + link[link.index("#") :]

        if list_runs:
            times: list[float] = []
            in_page: list[float] = []
            for _ in range(list_runs):
                page = new_page(br)
                page.goto(
                    b.url + "/icon.svg"
                )  # same origin, so the first run is not a cold DNS/TCP
                t0 = time.perf_counter()
                page.goto(url, wait_until="commit")
                page.locator("[data-testid=file]").first.wait_for(state="visible")
                times.append(time.perf_counter() - t0)
                # In the page: from the navigation's start to the manifest being shown.
                in_page.append(page.evaluate(LIST_MARK))
                page.context.close()
            extra["list_all_ms"] = [round(t * 1000) for t in times]
            extra["list_page_all_ms"] = [round(t) for t in in_page]

        # The same share gets the files to move ("add files" while sharing).
        sharer.locator("input[type=file]").set_input_files(
            [str(warm), *(str(p) for p in files.values())]
        )
        # Wait until the sharer has hashed them (a worker, once per file): the receiver's
        # timing must not include the sharer's one-time hashing.
        sharer.wait_for_function("() => window.__hashing === 0", polling=200)
        memory = trees.get("receiver") if layout == "two" else None

        def opened() -> Any:
            page = new_page(br)
            page.goto(url)
            page.locator("[data-testid=file]").first.wait_for(state="visible")
            page.locator("[data-testid=status]").filter(has_text="Connected").wait_for()
            return page

        def one(page: Any, path: Path, size: int) -> dict[str, Any]:
            return pea_download(page, sharer, path.name, size, Watch(trees, memory_of=memory))

        receiver = [opened()]
        extra["warm"] = one(receiver[0], warm, warm.stat().st_size)

        def run(size: int) -> dict[str, Any]:
            if not reuse:  # a person opening the link and downloading: a new connection
                receiver[0].context.close()
                receiver[0] = opened()
            return one(receiver[0], files[size], size)

        yield run, extra


# --- the report --------------------------------------------------------------------------


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def run_line(layout: str, side: str, size: int, i: Any, r: dict[str, Any]) -> str:
    """One transfer, every figure: what the detail log and `--verbose` print."""
    st = r["stats"]
    pair_s, pair_r = (
        st["sharer"].get("candidate-pair", {}),
        st["receiver"].get("candidate-pair", {}),
    )
    tr_s, tr_r = st["sharer"].get("transport", {}), st["receiver"].get("transport", {})
    cpu = " ".join(f"{k} {pct(v)}" for k, v in r["cpu"].items())
    kinds = "; ".join(
        f"{role}: " + ", ".join(f"{k} {pct(v)}" for k, v in sorted(ks.items()) if v >= 0.01)
        for role, ks in r["cpu_kinds"].items()
        if role in ("sharer", "receiver", "browser")
    )
    t10 = f"{r['t10']:.2f}s" if r["t10"] is not None else "-"
    return (
        f"{layout:>3} {side:<4} {size // MiB:>5} MiB run {i}: "
        f"{size / MiB / r['seconds']:6.1f} MiB/s "
        f"({r['seconds']:.1f} s) first 10 MiB {t10}, longest gap {r['gap']:.2f}s at "
        f"{r['gap_at_mib']:.0f} MiB; other processes {pct(r['other'])} of a CPU; {cpu}\n"
        f"      UDP drops (namespace) {r['udp'].get('RcvbufErrors', 0)} rcvbuf / "
        f"{r['udp'].get('InErrors', 0)} in-errors of {r['udp'].get('InDatagrams', 0)} datagrams; "
        f"DTLS packets sent {tr_s.get('packetsSent', 0):.0f}, received "
        f"{tr_r.get('packetsReceived', 0):.0f}; discarded on send "
        f"{pair_s.get('packetsDiscardedOnSend', 0):.0f} (sharer), "
        f"{pair_r.get('packetsDiscardedOnSend', 0):.0f} (receiver); sharer bytes on the wire "
        f"{tr_s.get('bytesSent', 0) / max(size, 1):.3f} x the file\n"
        f"      CPU by process kind: {kinds}; UDP sockets (rcvbuf, drops): "
        f"{[(s['rcvbuf'], s['drops']) for s in r['socks']]}"
    )


def report_run(layout: str, entry: tuple[str, int, Any, dict[str, Any]], verbose: bool) -> None:
    line = run_line(layout, *entry)
    print(line if verbose else line.split("\n")[0], flush=True)


def summarize(layout: str, results: list[Any], sizes: list[int]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for size in sizes:
        got = {
            side: [r for s, z, i, r in results if s == side and z == size and i != "warm-up"]
            for side in ("bare", "pea")
        }
        speed = {k: med([size / MiB / r["seconds"] for r in v]) for k, v in got.items()}
        for side in ("bare", "pea"):
            rs = got[side]
            if not rs:
                continue
            ratio = f"{pct(speed['pea'] / speed['bare'])} of bare" if side == "pea" else ""
            rows.append(
                (
                    layout,
                    f"{size // MiB} MiB",
                    side,
                    f"{speed[side]:.1f} MiB/s",
                    ratio,
                    f"{med([r['t10'] for r in rs if r['t10'] is not None]):.2f} s",
                    f"{max(r['gap'] for r in rs):.2f} s",
                    f"{med([r['udp'].get('RcvbufErrors', 0) for r in rs]):.0f}",
                    ", ".join(f"{100 * r['other']:.0f}" for r in rs) + " %",
                    ", ".join(f"{size / MiB / r['seconds']:.1f}" for r in rs),
                )
            )
    return rows


def measure(
    args: argparse.Namespace, by_layout: dict[str, list[int]]
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Every transfer of the run, by layout; with --json, saved after each one, so a run
    cut short still leaves its figures (`--from-json` reports them)."""
    from playwright.sync_api import sync_playwright

    results: dict[str, list[Any]] = {}
    extra: dict[str, Any] = {}

    def keep(layout: str, entry: tuple[str, int, Any, dict[str, Any]]) -> None:
        results.setdefault(layout, []).append(entry)
        extra["measured_at"] = time.time()
        report_run(layout, entry, args.verbose)
        if args.json:
            args.json.write_text(json.dumps({"results": results, "extra": extra}, default=str))

    layouts = [x for x in args.layouts.split(",") if x in by_layout]
    with tempfile.TemporaryDirectory(prefix="pea-bench-") as d:
        files = {
            size: Path(d, f"file-{size // MiB}.bin")
            for layout in layouts
            for size in by_layout[layout]
        }
        for size, path in files.items():
            write_random(path, size)
        warm = Path(d, "warmup.bin")
        write_random(warm, args.warmup_mib * MiB)
        with sync_playwright() as pw:
            for layout in layouts:
                with ExitStack() as stack:
                    sides: dict[str, Run] = {}
                    if args.only != "pea":
                        run, warm_bare = stack.enter_context(
                            bare_session(pw, layout, args.warmup_mib * MiB, args.reuse)
                        )
                        sides["bare"] = run
                        keep(layout, ("bare", args.warmup_mib * MiB, "warm-up", warm_bare))
                    if args.only != "bare":
                        lists = args.list_runs if layout == "two" else 0
                        run, more = stack.enter_context(
                            pea_session(pw, layout, files, warm, lists, args.reuse)
                        )
                        sides["pea"] = run
                        warm_pea = more.pop("warm")
                        extra.update(more)
                        keep(layout, ("pea", args.warmup_mib * MiB, "warm-up", warm_pea))
                    # Interleaved, so both sides see the same load on the machine.
                    for size in by_layout[layout]:
                        for i in range(args.runs):
                            for side, run in sides.items():
                                keep(layout, (side, size, i, run(size)))
            if args.cli:  # the command-line peer's rows, same machine, same run

                def keep_cli(*entry: Any) -> None:
                    extra.setdefault("cli", []).append(entry)
                    extra["measured_at"] = time.time()
                    print(transfer_cli.run_line(*entry), flush=True)
                    if args.json:
                        args.json.write_text(json.dumps({"results": results, "extra": extra}))

                transfer_cli.measure(pw, args, Path(d), keep_cli)
    return results, extra


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="64,256,1024", help="MiB, comma-separated")
    ap.add_argument("--one-sizes", help="sizes for the one-browser layout (default: --sizes)")
    ap.add_argument("--runs", type=int, default=3, help="measured transfers per size and side")
    ap.add_argument("--warmup-mib", type=int, default=32)
    ap.add_argument("--list-runs", type=int, default=5)
    ap.add_argument("--layouts", default="two,one", help="two (browsers), one: which, in order")
    ap.add_argument("--only", choices=["bare", "pea"], help="measure one side only")
    ap.add_argument("--quick", action="store_true", help="64 and 256 MiB, 2 runs, 2 list runs")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="run every transfer on one connection (default: a new one per measured run)",
    )
    ap.add_argument("--verbose", action="store_true", help="print every transfer's detail")
    ap.add_argument("--json", type=Path, help="write every transfer's figures here")
    ap.add_argument("--from-json", type=Path, help="report the figures a --json run saved")
    ap.add_argument("--write-docs", action="store_true", help="replace ### Current figures in docs")
    transfer_cli.add_arguments(ap)
    ap.add_argument("--resume", type=int, metavar="MIB", help="resume row size (1024; 0: none)")
    ap.add_argument("--resume-down", type=float, default=5.0, help="each drop's length (s)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.runs, args.list_runs = "64,256", 2, 2
    if args.resume is None:
        args.resume = 256 if args.quick else 1024
    if not only_loopback() and not args.from_json:
        reexec_in_namespace()
    if not (ROOT / "signal" / "pea" / "static" / "index.html").is_file():
        sys.exit("build the web bundle first: make web")

    sizes = [int(s) * MiB for s in args.sizes.split(",")]
    one_sizes = [int(s) * MiB for s in args.one_sizes.split(",")] if args.one_sizes else sizes
    by_layout = {"two": sizes, "one": one_sizes}
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        results: dict[str, list[Any]] = saved["results"]
        extra: dict[str, Any] = saved["extra"]
    else:
        results, extra = measure(args, by_layout)
    layouts = list(results)
    rows: list[tuple[str, ...]] = [
        (
            "layout",
            "size",
            "side",
            "median",
            "pea / bare",
            "first 10 MiB",
            "longest gap",
            "UDP drops",
            "other CPU (per run)",
            "runs (MiB/s)",
        )
    ]
    for layout in layouts:
        done = sorted({z for _, z, i, _ in results[layout] if i != "warm-up"})
        rows += summarize(layout, results[layout], [z for z in by_layout[layout] if z in done])
    report = table(rows)
    two = [r for s, z, i, r in results.get("two", []) if s == "pea" and i != "warm-up"]
    if two and "mem_growth" in two[0]:
        mem = "; ".join(
            f"{size // MiB} MiB: "
            f"{max(r['mem_growth'] for r in two if r['size'] == size) / MiB:.0f} MiB"
            for size in sorted({r["size"] for r in two})
        )
        report += (
            f"\n\nReceiver browser memory growth (two browsers, pea, largest of the runs): {mem}."
        )
    if extra.get("list_page_all_ms"):
        report += (
            f"\nOpen link → file list, in the page: median {med(extra['list_page_all_ms']):.0f} ms "
            f"(runs {extra['list_page_all_ms']} ms); seen by Playwright "
            f"{med(extra['list_all_ms']):.0f} ms."
        )
    print(report)
    cli = transfer_cli.report(extra.get("cli", []))
    print("\n" + cli)
    # Written before the resume row runs, so a run that fails there keeps these; a run
    # without browser layouts (the resume row alone) leaves the browser figures alone.
    if args.write_docs and layouts:
        write_docs(report, args, extra.get("measured_at"))
    if args.write_docs and cli:
        transfer_cli.write_docs(cli, extra.get("measured_at"))
    resume = ""
    if args.resume and not args.from_json:
        from bench import transfer_resume

        resume = transfer_resume.report(transfer_resume.measure(args.resume, args.resume_down))
    if layouts:
        print(report)
    print(resume)
    if args.write_docs and resume:
        cmd = (
            "make web && .venv/bin/python -m bench.transfer --layouts none "
            f"--resume {args.resume} --resume-down {args.resume_down:g}"
        )
        transfer_resume.write_docs(resume, cmd)


def write_docs(out: str, args: argparse.Namespace, at: float | None) -> None:
    cmd = " ".join(["make web && .venv/bin/python -m bench.transfer", *shown_command(sys.argv[1:])])
    body = (
        f"Command (re-runs itself inside `unshare -n`): `{cmd}`\n\n"
        f"Measured {stamp(at)} on this project's "
        f"machine kind (2 cores, Chromium {chromium_version()}), medians of {args.runs} after "
        f"a {args.warmup_mib} MiB warm-up:\n\n{out}"
    )
    path = ROOT / "docs" / "benchmarks.md"
    path.write_text(
        replace_section(path.read_text(), "### Current figures", body, within="## Transfer")
    )


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    main()
