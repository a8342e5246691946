"""Transfer benchmark: a bare data-channel harness against pea's full path.

Bare harness: two browser processes, one RTCDataChannel, SDP exchanged by this script,
the sender repeats one in-memory buffer and the receiver only counts bytes: the ceiling
for this machine's WebRTC stack.

pea: a real redis-server and two pea nodes; the sharer's browser picks a real file, the
receiver's browser opens the link on the other node and downloads it as a person would
(File.slice, SHA-256 on both sides, service-worker streamed download to disk).

Measured: MiB/s moving the same 1 GiB (after a warm-up transfer), the receiver's
browser memory growth (RSS of all its processes, sampled every 50 ms) for 128 MiB and
1 GiB, and the time from opening the link to the file list.

Everything runs on loopback in a fresh network namespace: started outside one, the
script re-runs itself under `unshare -n`. Usage:

    .venv/bin/python -m bench.transfer [--size-mib 1024] [--small-mib 128] [--write-docs]
"""

from __future__ import annotations

import argparse
import functools
import http.server
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
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support.browser import CHROMIUM as _CHROMIUM
from tests.support.browser import CHROMIUM_ARGS as ARGS
from tests.support.procs import ROOT

MiB = 1 << 20
CHROMIUM = _CHROMIUM or "/usr/bin/chromium"

# The bare harness: the same chunk size rule and backpressure thresholds as pea's sender.
BARE_OFFER = """async () => {
  window.pc = new RTCPeerConnection({iceServers: []});
  window.dc = pc.createDataChannel('bench', {ordered: true});
  await pc.setLocalDescription(await pc.createOffer());
  while (pc.iceGatheringState !== 'complete') await new Promise(r => setTimeout(r, 20));
  return pc.localDescription.sdp;
}"""
BARE_ANSWER = """async (offer) => {
  window.pc = new RTCPeerConnection({iceServers: []});
  window.got = 0; window.doneAt = 0; window.target = Infinity;
  pc.ondatachannel = (e) => {
    e.channel.binaryType = 'arraybuffer';
    e.channel.onmessage = (m) => {
      got += m.data.byteLength;
      if (got >= target && !doneAt) doneAt = Date.now();
    };
    window.dc = e.channel;
  };
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription(await pc.createAnswer());
  while (pc.iceGatheringState !== 'complete') await new Promise(r => setTimeout(r, 20));
  return pc.localDescription.sdp;
}"""
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


class MemorySampler:
    """Peak RSS of a browser's whole process tree (browser, renderers, utilities)."""

    def __init__(self, marker: str) -> None:
        import psutil

        self.psutil = psutil
        self.marker = marker
        self.root = next(
            p
            for p in psutil.process_iter(["cmdline"])
            if marker in (p.info["cmdline"] or []) and "--type=" not in " ".join(p.info["cmdline"])
        )

    def rss_by_kind(self) -> dict[str, int]:
        """RSS per kind of process: browser, renderer, NetworkService, gpu-process…"""
        out: dict[str, int] = {}
        for p in [self.root, *self.root.children(recursive=True)]:
            with suppress(self.psutil.Error):
                args = p.cmdline()
                kind = next((a[7:] for a in args if a.startswith("--type=")), "browser")
                sub = next((a[20:] for a in args if a.startswith("--utility-sub-type=")), "")
                key = sub.rsplit(".", 1)[-1] if sub else kind
                out[key] = out.get(key, 0) + p.memory_info().rss
        return out

    def rss(self) -> int:
        return sum(self.rss_by_kind().values())

    @contextmanager
    def peak(self) -> Iterator[dict[str, Any]]:
        base = self.rss_by_kind()
        out: dict[str, Any] = {"baseline": sum(base.values()), "peak": 0, "at_peak": {}}
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                now = self.rss_by_kind()
                if sum(now.values()) > out["peak"]:
                    out["peak"] = sum(now.values())
                    out["at_peak"] = {k: v - base.get(k, 0) for k, v in now.items()}
                stop.wait(0.05)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        try:
            yield out
        finally:
            stop.set()
            t.join()
            out["growth"] = max(0, out["peak"] - out["baseline"])


def launch(pw: Any, role: str) -> Any:
    # An unknown switch, ignored by Chromium, so the sampler can find this browser's processes.
    return pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, f"--pea-bench-{role}"])


def new_page(browser: Any) -> Any:
    ctx = browser.new_context(accept_downloads=True)
    ctx.grant_permissions(["microphone"])  # else Chromium gathers no loopback candidate
    ctx.set_default_timeout(600_000)
    return ctx.new_page()


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


def bare_transfer(sender: Any, receiver: Any, size: int) -> float:
    """Seconds to move `size` bytes over an already connected bare channel."""
    receiver.evaluate("n => { window.got = 0; window.doneAt = 0; window.target = n; }", size)
    start = sender.evaluate(BARE_SEND, size)
    receiver.wait_for_function("() => window.doneAt > 0", polling=20)
    return float(receiver.evaluate("doneAt") - start) / 1000


def bench_bare(pw: Any, size: int, warmup: int) -> float:
    with tempfile.TemporaryDirectory() as d, static_server(Path(d)) as url:
        Path(d, "index.html").write_text("<!doctype html><title>bare</title>")
        b1, b2 = launch(pw, "bare-sender"), launch(pw, "bare-receiver")
        try:
            s, r = new_page(b1), new_page(b2)
            s.goto(url + "/")
            r.goto(url + "/")
            offer = s.evaluate(BARE_OFFER)
            answer = r.evaluate(BARE_ANSWER, offer)
            s.evaluate(
                "async (sdp) => { await pc.setRemoteDescription({type: 'answer', sdp}); }", answer
            )
            s.wait_for_function("() => window.dc.readyState === 'open'")
            bare_transfer(s, r, warmup)
            return size / MiB / bare_transfer(s, r, size)
        finally:
            b1.close()
            b2.close()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def pea_download(page: Any, name: str) -> float:
    row = page.locator(f'[data-testid=file][data-name="{name}"]')
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
    return elapsed


def bench_pea(pw: Any, big: Path, small: Path, warmup: Path, list_runs: int) -> dict[str, Any]:
    from tests.support.procs import pea_node, redis_server

    out: dict[str, Any] = {}
    with (
        redis_server() as redis,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as a,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as b,
    ):
        bs, br = launch(pw, "pea-sharer"), launch(pw, "pea-receiver")
        try:
            sharer = new_page(bs)
            sharer.goto(a.url + "/")
            # Link-to-list is timed on a share of one small file: on this one machine the
            # sharer's background hashing of the large files would otherwise take a core
            # from the receiver's page load, which on two devices it never does.
            tiny = big.with_name("list-me.txt")
            tiny.write_text("pea\n")
            sharer.locator("input[type=file]").set_input_files([str(tiny)])
            link = sharer.locator("[data-testid=share-link]").get_attribute("href")
            assert link
            url = b.url + "/" + link[link.index("#") :]

            times: list[float] = []
            in_page: list[float] = []
            for _ in range(list_runs):
                page = new_page(br)
                page.goto(
                    b.url + "/icon.svg"
                )  # same origin, so the first run is not a cold DNS/TCP

                def open_and_list(page: Any = page) -> None:
                    page.goto(url, wait_until="commit")
                    page.locator("[data-testid=file]").first.wait_for(state="visible")

                times.append(timed(open_and_list)[0])
                # In the page: from the navigation's start to the manifest being shown.
                in_page.append(page.evaluate(LIST_MARK))
                page.context.close()
            out["list_ms"] = statistics.median(times) * 1000
            out["list_all_ms"] = [round(t * 1000) for t in times]
            out["list_page_ms"] = statistics.median(in_page)
            out["list_page_all_ms"] = [round(t) for t in in_page]

            # The same share gets the files to move ("add files" while sharing).
            sharer.locator("input[type=file]").set_input_files([str(warmup), str(small), str(big)])
            receiver = new_page(br)
            receiver.goto(url)
            receiver.locator("[data-testid=file]").first.wait_for(state="visible")
            receiver.locator("[data-testid=status]").filter(has_text="Connected").wait_for()
            pea_download(receiver, warmup.name)
            sampler = MemorySampler("--pea-bench-pea-receiver")
            with sampler.peak() as mem_small:
                t_small = pea_download(receiver, small.name)
            with sampler.peak() as mem_big:
                t_big = pea_download(receiver, big.name)
            # The command-line peer beside the browser pair, on the same file and nodes.
            out["cli_receive_mibs"] = cli_receive(url, small)
            out["cli_send_mibs"] = cli_send(a.url, b.url, small, new_page(br))
            out.update(
                small_mibs=small.stat().st_size / MiB / t_small,
                big_mibs=big.stat().st_size / MiB / t_big,
                mem_small=mem_small["growth"],
                mem_big=mem_big["growth"],
                mem_big_where=mem_big["at_peak"],
                mem_small_where=mem_small["at_peak"],
            )
        finally:
            bs.close()
            br.close()
    return out


def cli_receive(url: str, file: Path) -> float:
    """Browser -> `pea receive`: MiB/s from its first bytes to the file verified on disk."""
    from tests.support.cli import receive

    with tempfile.TemporaryDirectory(prefix="pea-bench-cli-") as d:
        r = receive(url, "--only", file.name, "--out", d)
        r.wait_event(lambda e: e.get("event") == "download", 120, "the first bytes")
        start = time.monotonic()
        assert r.wait(1800) == 0, r.output()
        return file.stat().st_size / MiB / (time.monotonic() - start)


def cli_send(node_a: str, node_b: str, file: Path, page: Any) -> float:
    """`pea send` -> browser: MiB/s of the page's download, as for the browser pair."""
    from tests.support.cli import send

    sender, link = send(node_a, file)
    try:
        page.goto(node_b + "/" + link[link.index("#") :])
        page.locator("[data-testid=file]").first.wait_for(state="visible")
        return file.stat().st_size / MiB / pea_download(page, file.name)
    finally:
        sender.kill()


def table(rows: list[tuple[str, str, str]]) -> str:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"| {r[0]:<{w0}} | {r[1]:>{w1}} | {r[2]} |" for r in rows]
    lines.insert(1, f"|{'-' * (w0 + 2)}|{'-' * (w1 + 1)}:|---|")
    return "\n".join(lines)


def write_docs(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start = text.find("## Transfer")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if nxt == -1 else "\n" + text[nxt + 1 :])
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--small-mib", type=int, default=128)
    ap.add_argument("--warmup-mib", type=int, default=32)
    ap.add_argument("--list-runs", type=int, default=5)
    ap.add_argument(
        "--write-docs", action="store_true", help="replace ## Transfer in docs/benchmarks.md"
    )
    args = ap.parse_args()
    if not only_loopback():
        reexec_in_namespace()
    if not (ROOT / "signal" / "pea" / "static" / "index.html").is_file():
        sys.exit("build the web bundle first: make web")

    from playwright.sync_api import sync_playwright

    size, small_size = args.size_mib * MiB, args.small_mib * MiB
    with tempfile.TemporaryDirectory(prefix="pea-bench-") as d:
        big, small, warm = Path(d, "big.bin"), Path(d, "small.bin"), Path(d, "warmup.bin")
        write_random(big, size)
        write_random(small, small_size)
        write_random(warm, args.warmup_mib * MiB)
        with sync_playwright() as pw:
            bare = bench_bare(pw, size, args.warmup_mib * MiB)
            pea = bench_pea(pw, big, small, warm, args.list_runs)

    mem_ratio = pea["mem_big"] / max(pea["mem_small"], 1)
    rows = [
        ("measure", "result", "goal"),
        (f"bare data channel, {args.size_mib} MiB", f"{bare:.1f} MiB/s", "ceiling"),
        (
            f"pea full path, {args.size_mib} MiB",
            f"{pea['big_mibs']:.1f} MiB/s",
            f"≥ 80 % of bare: {100 * pea['big_mibs'] / bare:.0f} %",
        ),
        (f"pea full path, {args.small_mib} MiB", f"{pea['small_mibs']:.1f} MiB/s", ""),
        (
            f"browser → `pea receive` (CLI), {args.small_mib} MiB",
            f"{pea['cli_receive_mibs']:.1f} MiB/s",
            "aiortc: SCTP in Python",
        ),
        (
            f"`pea send` (CLI) → browser, {args.small_mib} MiB",
            f"{pea['cli_send_mibs']:.1f} MiB/s",
            "aiortc: SCTP in Python",
        ),
        (
            f"receiver memory growth, {args.small_mib} MiB",
            f"{pea['mem_small'] / MiB:.0f} MiB",
            "≤ 256 MiB",
        ),
        (
            f"receiver memory growth, {args.size_mib} MiB",
            f"{pea['mem_big'] / MiB:.0f} MiB",
            f"≤ 256 MiB, ≤ 1.25 x the {args.small_mib} MiB figure: {mem_ratio:.2f} x",
        ),
        (
            "open link → file list, in the page (median)",
            f"{pea['list_page_ms']:.0f} ms",
            f"≤ 500 ms (runs: {', '.join(map(str, pea['list_page_all_ms']))} ms)",
        ),
        (
            "same, seen by Playwright (median)",
            f"{pea['list_ms']:.0f} ms",
            f"runs: {', '.join(map(str, pea['list_all_ms']))} ms",
        ),
    ]
    out = table(rows)
    where = "; ".join(
        f"{label}: "
        + ", ".join(f"{k} {v / MiB:+.0f} MiB" for k, v in sorted(pea[key].items()) if abs(v) >= MiB)
        for label, key in (
            (f"{args.small_mib} MiB", "mem_small_where"),
            (f"{args.size_mib} MiB", "mem_big_where"),
        )
    )
    out += f"\n\nReceiver growth at its peak, by process kind ({where})."
    print(out)
    if args.write_docs:
        cmd = "make web && .venv/bin/python -m bench.transfer --write-docs"
        section = (
            "## Transfer\n\n"
            f"Command (re-runs itself inside `unshare -n`): `{cmd}`\n\n"
            f"Measured {time.strftime('%Y-%m-%d')} on this project's machine kind "
            f"(2 cores, Chromium {chromium_version()}), one run:\n\n{out}\n\n" + LIMITS
        )
        write_docs(section)


LIMITS = """What limits these figures:
- Both browsers, both nodes and Redis share 2 cores; WebRTC's SCTP stack is CPU-bound
  here, so any other load on the machine moves the figures by ±20 %. Read single runs
  as indications, not as fine comparisons.
- The bare harness sends one buffer again and again and discards what arrives; pea
  also reads the file (File.slice), hashes it (SHA-256, hash-wasm: the sharer once
  per shared file in a worker when it is added, the receiver inline as bytes arrive),
  streams it through a service worker and the browser's download writer to disk, and
  paces the sender with the receiver's acknowledgements (16 MiB window).
- Measured here, the receiver's inline hash and the service-worker hop each cost
  roughly a tenth of the throughput; hashing in a receiver-side worker did not raise
  throughput measurably and doubled the receiver's memory growth (chunks are copied
  to the worker and collected late), so pea does not do it.
- The CLI rows run `pea send` / `pea receive` (aiortc) against the same nodes and a
  Chromium page: aiortc's SCTP and DTLS run in Python, one core at most, so the CLI
  is the bottleneck of those rows; `pea receive` is timed from its first bytes to
  the file verified on disk.
- Memory is the RSS sum of every process of the receiving browser, sampled every 50 ms,
  minus the value before the download; it includes the browser's own disk cache and
  allocator slack, so it over-states what pea holds.
- "Open link → file list" is timed on a share of one small file, the sharer idle.
  In the page it runs from the navigation's start to the manifest arriving
  (performance mark `pea:files`): page load, WebSocket join, signed offer/answer
  through two nodes and Redis, ICE on loopback, DTLS, SCTP and the manifest.
  "Seen by Playwright" adds the driver's own round trips (navigation command,
  polling for the first row). A real network adds its round trips.
"""


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=20)
        return out.stdout.split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


if __name__ == "__main__":
    main()
