"""The transfer benchmark's resume row: one file downloaded twice on new connections, once
untouched and once with the receiver's link taken down three times for 5 s, in one run.

Each browser (Chromium) runs in a network namespace of its own, joined by a veth pair to
the namespace of the benchmark, where one pea node serves (tests/support/netlab.py, as the
resume test does); a drop is the receiver's link going down, both ways, then up again.
Per drop it reports when the receiver's page said it was reconnecting, and when file bytes
arrived again after the link came back (the receiver's data channels, metered in the
page); for the run, the time lost beyond the drops themselves (the overhead) and the
bytes the sharer sent beyond the file (metered in its page).

Run by bench.transfer (`--resume MIB`, on by default; `--layouts none` for this row only):

    .venv/bin/python -m bench.transfer --layouts none --resume 1024 [--write-docs]
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.docs_section import replace as replace_section
from bench.docs_section import stamp
from bench.transfer import INIT, busy_seconds, table, write_random
from tests.support.browser import HIDE_FILE_PICKERS
from tests.support.netlab import SERVER_ADDRESS, Host, Lab, lab
from tests.support.nsbrowser import NamespaceBrowsers
from tests.support.pages import COUNT_SENT
from tests.support.procs import ROOT, PeaNode, node_env

MiB = 1 << 20
DOWN_S = 5.0
DROP_AT = (0.2, 0.45, 0.7)  # of the file received, when each drop starts
GAP_MS = 1000  # a pause in arriving bytes at least this long is a stall
WARM_UP = 32 * MiB

# In the receiver's page: every file byte arriving on a `get` channel (one per download,
# and a new one on each resume) feeds one flow, which keeps its stalls as [last byte
# before, first byte after, bytes so far]; and each change of the page's status line or
# of its peer connections' states [time, "status | state,state…"].
FLOW = """(() => {
  const GAP_MS = GAP;
  const flow = window.__flow = {bytes: 0, first: 0, last: 0, gaps: [], status: []};
  const create = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (label, opts) {
    const ch = create.call(this, label, opts);
    if (label === 'get') ch.addEventListener('message', (e) => {
      if (typeof e.data === 'string') return;
      const now = Date.now();
      if (!flow.first) flow.first = now;
      else if (now - flow.last >= GAP_MS) flow.gaps.push([flow.last, now, flow.bytes]);
      flow.last = now;
      flow.bytes += e.data.byteLength;
    });
    return ch;
  };
  let seen = null;
  setInterval(() => {
    const s = document.querySelector('[data-testid=status]');
    const pcs = (window.__pcs || []).map((pc) => pc.connectionState).join(',');
    const text = (s ? s.textContent : '') + ' | ' + pcs;
    if (text !== seen) { seen = text; flow.status.push([Date.now(), text]); }
  }, 50);
})();""".replace("GAP;", f"{GAP_MS};")


@dataclass
class Download:
    """One download's figures: seconds from the click to "Saved and verified", and the
    receiver's flow."""

    seconds: float
    sent: int  # file bytes the sharer sent for it
    flow: dict[str, Any]
    busy: float  # the whole machine's CPU use meanwhile, in cores
    drops: list[tuple[float, float]] = field(default_factory=list)  # (down, up), epoch ms


def now_ms() -> float:
    return time.time() * 1000  # the pages' Date.now() runs on the same clock


@contextmanager
def setup(pw: Any, paths: list[Path]) -> Iterator[tuple[Lab, Host, Any, str, Any]]:
    """A node, a sharer sharing `paths` (hashed), and the receiver's host and browser:
    yields (lab, receiver host, sharer page, share link, receiver's browser)."""
    with lab("bench-resume") as net:
        node = PeaNode(
            env=node_env(ice_servers="[]", log_level="warning"), args=["--host", "0.0.0.0"]
        )
        nsb = NamespaceBrowsers(pw, net.folder)
        try:
            node.start()
            origin = f"http://{SERVER_ADDRESS}:{node.port}"
            sharer_host, receiver_host = net.add_host("sharer"), net.add_host("receiver")
            ctx = nsb.launch("chromium", sharer_host, origin).new_context()
            ctx.grant_permissions(["microphone"])  # else Chromium gathers no candidate
            ctx.add_init_script(INIT)
            ctx.add_init_script(COUNT_SENT)
            sharer = ctx.new_page()
            sharer.goto(origin + "/")
            sharer.locator("input[type=file]").set_input_files([str(p) for p in paths])
            link = sharer.locator("[data-testid=share-link]").get_attribute("href")
            assert link
            # The sharer hashes the file once: not part of either download's time.
            sharer.wait_for_function("() => window.__hashing === 0", polling=200, timeout=600_000)
            url = origin + "/" + link[link.index("#") :]
            receiver_browser = nsb.launch("chromium", receiver_host, origin)
            yield net, receiver_host, sharer, url, receiver_browser
        finally:
            nsb.close()
            node.stop()
            node.remove_log()


def download(
    receiver_browser: Any,
    sharer: Any,
    url: str,
    name: str,
    size: int,
    drop: tuple[Lab, Host] | None = None,
    down_s: float = DOWN_S,
) -> Download:
    """One download on a new connection; with `drop`, the host's link goes down for
    `down_s` at each of DROP_AT."""
    ctx = receiver_browser.new_context(accept_downloads=True)
    try:
        ctx.grant_permissions(["microphone"])
        ctx.add_init_script(INIT)
        ctx.add_init_script(FLOW)
        ctx.add_init_script(HIDE_FILE_PICKERS)  # headless Chromium cancels a save dialog
        ctx.set_default_timeout(60_000)
        page = ctx.new_page()
        page.goto(url)
        page.locator("[data-testid=status]").filter(has_text="Connected").wait_for()
        row = page.locator(f'[data-testid=file][data-name="{name}"]')
        detail = row.locator(".detail")
        sent0 = sharer.evaluate("window.__peaSent")
        busy0 = busy_seconds()
        t0 = time.monotonic()
        with page.expect_download() as info:
            row.locator("[data-testid=download]").click()
        drops: list[tuple[float, float]] = []
        # Generous: a tenth of the slowest speed seen here, plus the drops.
        deadline = t0 + 120 + size / (MiB / 4) + len(DROP_AT) * (down_s + 120)
        while True:
            text = detail.inner_text()
            if "verified" in text:
                break
            if text.startswith("Failed"):
                raise RuntimeError(f"the download failed: {text}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the download did not finish in time: {text}")
            if drop and len(drops) < len(DROP_AT):
                got = page.evaluate("window.__flow.bytes")
                if got >= DROP_AT[len(drops)] * size:
                    net, host = drop
                    down = now_ms()
                    net.set_link(host, up=False)
                    time.sleep(down_s)
                    net.set_link(host, up=True)
                    drops.append((down, now_ms()))
                    continue
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        busy = (busy_seconds() - busy0) / seconds
        dl = info.value
        if dl.failure():
            raise RuntimeError(f"the browser's download failed: {dl.failure()}")
        dl.delete()
        return Download(
            seconds=seconds,
            sent=sharer.evaluate("window.__peaSent") - sent0,
            flow=page.evaluate("window.__flow"),
            busy=busy,
            drops=drops,
        )
    finally:
        ctx.close()


def per_drop(d: Download) -> list[dict[str, float | None]]:
    """For each drop, seconds: from its start to the connection's state "disconnected"
    and to the page saying "Reconnecting" (None: it did not), from its end to file bytes
    arriving again, the whole stall in arriving bytes and what of it is not the drop (a
    figure the machine's load hardly moves, unlike the difference of two long runs)."""
    out: list[dict[str, float | None]] = []
    for down, up in d.drops:

        def first(word: str, down: float = down, up: float = up) -> float | None:
            t = next((t for t, text in d.flow["status"] if t >= down and word in text), None)
            return (t - down) / 1000 if t is not None and t - up < 30_000 else None

        gap = next((g for g in d.flow["gaps"] if g[1] >= up), None)
        out.append(
            {
                "disconnected": first("disconnected"),
                "noticed": first("Reconnecting"),
                "again": (gap[1] - up) / 1000 if gap else None,
                "stall": (gap[1] - gap[0]) / 1000 if gap else None,
                "beyond": (gap[1] - gap[0] - (up - down)) / 1000 if gap else None,
            }
        )
    return out


def measure(size_mib: int, down_s: float = DOWN_S) -> dict[str, Any]:
    """Both downloads, and the machine's load average before and after."""
    import tempfile

    from playwright.sync_api import sync_playwright

    size = size_mib * MiB
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="pea-bench-resume-") as d, sync_playwright() as pw:
        path, warm = Path(d, f"resume-{size_mib}.bin"), Path(d, "warm-up.bin")
        write_random(path, size)
        write_random(warm, WARM_UP)
        with setup(pw, [warm, path]) as (net, host, sharer, url, receiver):
            # A fresh browser's first download is slower (caches, compiled code): not either.
            download(receiver, sharer, url, warm.name, WARM_UP)
            plain = download(receiver, sharer, url, path.name, size)
            print(f"resume row: {size_mib} MiB without drops in {plain.seconds:.1f} s", flush=True)
            dropped = download(
                receiver, sharer, url, path.name, size, drop=(net, host), down_s=down_s
            )
            print(f"resume row: with drops in {dropped.seconds:.1f} s", flush=True)
            ends = [down for down, _ in dropped.drops[1:]] + [float("inf")]
            for (down, up), end in zip(dropped.drops, ends, strict=True):
                print(f"  drop of {(up - down) / 1000:.1f} s, then:", flush=True)
                for t, text in dropped.flow["status"]:  # what the receiver's page went through
                    if down <= t < min(end, up + 30_000):
                        print(f"    {(t - down) / 1000:+6.2f} s  {text}", flush=True)
    load.append(os.getloadavg())
    return {"size": size, "plain": plain, "dropped": dropped, "load": load, "down_s": down_s}


def fmt(x: float | None, unit: str = " s") -> str:
    return "-" if x is None else f"{x:.1f}{unit}"


def report(r: dict[str, Any]) -> str:
    size, plain, dropped = r["size"], r["plain"], r["dropped"]
    n = len(dropped.drops)
    down = sum(up - dn for dn, up in dropped.drops) / 1000
    lost = dropped.seconds - plain.seconds
    drops = per_drop(dropped)
    rows: list[tuple[str, ...]] = [
        (
            "size",
            "without drops",
            f"with {n} drops of {r['down_s']:g} s",
            "time lost",
            f"overhead (lost minus {down:.0f} s)",
            "per drop",
            "stall beyond each drop",
            "bytes again after link up",
            "ICE disconnected after",
            "page said reconnecting after",
            "sent beyond the file",
        ),
        (
            f"{size // MiB} MiB",
            f"{plain.seconds:.1f} s ({size / MiB / plain.seconds:.1f} MiB/s)",
            f"{dropped.seconds:.1f} s ({size / MiB / dropped.seconds:.1f} MiB/s)",
            f"{lost:.1f} s",
            f"{lost - down:.1f} s",
            f"{(lost - down) / max(n, 1):.1f} s",
            ", ".join(fmt(x["beyond"]) for x in drops),
            ", ".join(fmt(x["again"]) for x in drops),
            ", ".join(fmt(x["disconnected"]) for x in drops),
            ", ".join(fmt(x["noticed"]) for x in drops),
            f"{dropped.sent - size} B ({(dropped.sent - size) / MiB:.2f} MiB)",
        ),
    ]
    (l1, l5, _), (m1, m5, _) = r["load"]
    return (
        table(rows)
        + "\n\nStalls in the arriving bytes, each drop included: "
        + ", ".join(fmt(x["stall"]) for x in drops)
        + f". Machine CPU in use meanwhile: {plain.busy:.1f} and {dropped.busy:.1f} of 2 cores; "
        f"load average (1, 5 min) {l1:.1f}, {l5:.1f} before, {m1:.1f}, {m5:.1f} after."
    )


def write_docs(text: str, command: str) -> None:
    """Replace (or add) `### Resume figures` in docs/benchmarks.md's Transfer section,
    after its current figures."""
    points = ", ".join(f"{100 * x:.0f} %" for x in DROP_AT)
    body = (
        f"Command (re-runs itself inside `unshare -n`): `{command}`\n\n"
        f"Measured {stamp()}, Chromium in two "
        "network namespaces (sharer, receiver), one pea node, a new connection per "
        f"download after a {WARM_UP // MiB} MiB warm-up download; drops at {points} of the "
        f"file:\n\n{text}"
    )
    path = ROOT / "docs" / "benchmarks.md"
    doc = replace_section(
        path.read_text(),
        "### Resume figures",
        body,
        within="## Transfer",
        after="### Current figures",
    )
    path.write_text(doc)
