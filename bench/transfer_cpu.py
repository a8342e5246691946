"""Where a transfer's CPU goes: CPU milliseconds per MiB, by side, process and thread.

Throughput on a shared 2-core machine moves with everyone else's load; the CPU a
transfer costs per MiB moves much less. This script runs `bench/transfer.py`'s bare
harness and pea's full path in the two-browser layout, alternately, and prints for
each transfer the CPU time per MiB of every thread of the sharer's and the receiver's
browsers, grouped by process kind and thread name (`/proc/<pid>/task/*/stat`), with
the machine's load average. With `--profile DIR`, pea's sharer and receiver pages are
sampled by the Chrome DevTools Protocol profiler during each pea transfer: the
hottest JavaScript functions are printed and the `.cpuprofile` files (open them in
Chrome DevTools) are written to DIR.

    .venv/bin/python -m bench.transfer_cpu [--size 128] [--runs 2] [--profile /tmp/prof]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

from bench import transfer as tb
from tests.support.procs import ROOT

MiB = 1 << 20
TICK = os.sysconf("SC_CLK_TCK")


def threads(tree: tb.Tree) -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, tid) → ("process kind / thread name", CPU seconds) for every thread of a tree."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for p in tree.procs():
        with suppress(Exception):
            kind = tree.kind(p)
            for task in Path(f"/proc/{p.pid}/task").iterdir():
                with suppress(OSError, ValueError, IndexError):
                    stat = (task / "stat").read_text()
                    name = stat[stat.index("(") + 1 : stat.rindex(")")]
                    fields = stat[stat.rindex(")") + 2 :].split()
                    cpu = (int(fields[11]) + int(fields[12])) / TICK
                    # Numbered pools ("ThreadPoolForeg", "ThreadPoolSingl") are one thing.
                    out[(p.pid, int(task.name))] = (f"{kind} / {name.rstrip('0123456789')}", cpu)
    return out


def per_mib(
    before: dict[Any, tuple[str, float]], after: dict[Any, tuple[str, float]], mib: float
) -> dict[str, float]:
    """CPU ms per MiB by thread group."""
    out: dict[str, float] = defaultdict(float)
    for key, (name, cpu) in after.items():
        out[name] += (cpu - before.get(key, (name, 0.0))[1]) * 1000 / mib
    return dict(out)


def hot(profile: dict[str, Any], top: int) -> list[tuple[float, str]]:
    """Self time (ms) per function of a CDP profile, largest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    self_ms: dict[str, float] = defaultdict(float)
    deltas = profile.get("timeDeltas", [])
    for sample, dt in zip(profile.get("samples", []), [*deltas[1:], 0], strict=False):
        f = nodes[sample]["callFrame"]
        where = f"{f['functionName'] or '(anonymous)'} {Path(f['url']).name}:{f['lineNumber'] + 1}"
        self_ms[where.strip()] += dt / 1000
    return sorted(((v, k) for k, v in self_ms.items()), reverse=True)[:top]


class Profiled:
    """The CDP sampling profiler on some pages, for one transfer."""

    def __init__(self, pages: dict[str, Any]) -> None:
        self.sessions = {}
        for role, page in pages.items():
            s = page.context.new_cdp_session(page)
            s.send("Profiler.enable")
            s.send("Profiler.setSamplingInterval", {"interval": 500})
            s.send("Profiler.start")
            self.sessions[role] = s

    def stop(self, folder: Path, tag: str) -> dict[str, list[tuple[float, str]]]:
        out = {}
        for role, s in self.sessions.items():
            prof = s.send("Profiler.stop")["profile"]
            (folder / f"{tag}-{role}.cpuprofile").write_text(json.dumps(prof))
            out[role] = hot(prof, 18)
            s.detach()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=128, help="MiB per transfer")
    ap.add_argument("--runs", type=int, default=2, help="transfers per side")
    ap.add_argument("--only", choices=["bare", "pea"], help="measure one side only")
    ap.add_argument("--profile", type=Path, help="CDP-profile pea's pages, write .cpuprofile here")
    ap.add_argument("--json", type=Path, help="write every transfer's figures here")
    ap.add_argument(
        "--init",
        help="a script run in every page before its own, for experiments "
        "(e.g. 'window.__peaForcePortPump = true')",
    )
    args = ap.parse_args()
    if not tb.only_loopback():
        argv = [sys.executable, "-m", "bench.transfer_cpu", *sys.argv[1:]]
        cmd = " ".join(__import__("shlex").quote(a) for a in argv)
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up; exec {cmd}"])
    if not (ROOT / "signal" / "pea" / "static" / "index.html").is_file():
        sys.exit("build the web bundle first: make web")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    size = args.size * MiB
    results: list[dict[str, Any]] = []

    def measured(
        side: str, fn: Any, trees: dict[str, tb.Tree], pages: dict[str, Any] | None
    ) -> Any:
        def wrapped(*a: Any, **k: Any) -> Any:
            t0 = {r: threads(t) for r, t in trees.items() if r in ("sharer", "receiver")}
            prof = Profiled(pages) if pages is not None and args.profile else None
            load = os.getloadavg()[0]
            r = fn(*a, **k)
            mib = r.get("size", size) / MiB
            cpu = {role: per_mib(t0[role], threads(trees[role]), mib) for role in t0}
            entry = {
                "side": side,
                "mib": mib,
                "mib_s": mib / r["seconds"],
                "load": load,
                "other": r["other"],
                "cpu": cpu,
            }
            if prof:
                entry["hot"] = prof.stop(args.profile, f"{side}-{len(results)}")
            results.append(entry)
            report(entry)
            if args.json:
                args.json.write_text(json.dumps(results))
            return r

        return wrapped

    with tempfile.TemporaryDirectory(prefix="pea-bench-") as d:
        path = Path(d, f"file-{args.size}.bin")
        tb.write_random(path, size)
        warm = Path(d, "warmup.bin")
        tb.write_random(warm, 8 * MiB)
        orig_pea, orig_bare = tb.pea_download, tb.bare_transfer
        warming = [True]

        def pea(page: Any, sharer: Any, name: str, n: int, watch: Any) -> Any:
            if warming[0]:
                return orig_pea(page, sharer, name, n, watch)
            return measured("pea", orig_pea, watch.trees, {"sharer": sharer, "receiver": page})(
                page, sharer, name, n, watch
            )

        def bare(s: Any, r: Any, n: int, watch: Any) -> Any:
            if warming[0]:
                return orig_bare(s, r, n, watch)
            return measured("bare", orig_bare, watch.trees, None)(s, r, n, watch)

        tb.pea_download, tb.bare_transfer = pea, bare  # type: ignore[assignment]
        if args.init:
            orig_page = tb.new_page

            def new_page(browser: Any) -> Any:
                page = orig_page(browser)
                page.context.add_init_script(args.init)
                return page

            tb.new_page = new_page
        with sync_playwright() as pw, ExitStack() as stack:
            sides = {}
            if args.only != "pea":
                sides["bare"] = stack.enter_context(tb.bare_session(pw, "two", 8 * MiB, False))[0]
            if args.only != "bare":
                sides["pea"] = stack.enter_context(
                    tb.pea_session(pw, "two", {size: path}, warm, 0, False)
                )[0]
            warming[0] = False
            for _ in range(args.runs):
                for run in sides.values():
                    run(size)
    summary(results)


def report(e: dict[str, Any]) -> None:
    print(
        f"{e['side']:<4} {e['mib']:.0f} MiB at {e['mib_s']:.1f} MiB/s, "
        f"load average {e['load']:.1f}, "
        f"other processes {100 * e['other']:.0f} % of a CPU",
        flush=True,
    )
    for role, groups in e["cpu"].items():
        total = sum(groups.values())
        parts = ", ".join(
            f"{k} {v:.1f}" for k, v in sorted(groups.items(), key=lambda kv: -kv[1]) if v >= 0.5
        )
        print(f"  {role}: {total:.1f} ms/MiB ({parts})", flush=True)
    for role, fns in e.get("hot", {}).items():
        print(f"  hottest JS, {role} page (self ms over the transfer):")
        for ms, where in fns:
            print(f"    {ms:8.1f}  {where}")


def summary(results: list[dict[str, Any]]) -> None:
    print("\nCPU ms per MiB (per transfer), by side and role:")
    for side in ("bare", "pea"):
        rs = [r for r in results if r["side"] == side]
        if not rs:
            continue
        for role in ("sharer", "receiver"):
            print(
                f"  {side:<4} {role:<8} "
                + ", ".join(f"{sum(r['cpu'][role].values()):.1f}" for r in rs)
            )


if __name__ == "__main__":
    main()
