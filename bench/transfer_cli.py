"""The command-line peer's rows of the transfer benchmark: `pea send` → Chromium,
Chromium → `pea receive`, and `pea send` → `pea receive`, through two pea nodes and
Redis, in the same run (and namespace) as the browser pair.

CLI → browser: one `pea send` shares every size (hashed before the first run); for each
run a new page opens the link on the other node and downloads through its UI, timed from
the click to the file on disk, as the browser rows are. Browser → CLI and CLI → CLI: a
new `pea receive --only NAME` per run (a new connection, as a person running the
command), timed from the file list to the verified file on disk. For every run: the
throughput, the time to the first 10 MiB, the CLI process's CPU (share of one core over
the transfer) and its resident memory, peak and growth over what it held before the
bulk of the file (the bound `make test` checks).

Run alone (a fresh namespace, no browser pair): `.venv/bin/python -m bench.transfer_cli
--sizes 64`; inside `bench.transfer` it runs after the browser layouts unless `--no-cli`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.docs_section import replace as replace_section
from bench.docs_section import shown_command, stamp
from tests.support.cli import CliProc, Sampler, receive, send

MiB = 1 << 20
FIRST = 10 * MiB
DIRECTIONS = ("cli → browser", "browser → cli", "cli → cli")
SECTION = "### Command-line peer figures"


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--no-cli", dest="cli", action="store_false", help="skip the pea send/receive rows"
    )
    ap.add_argument("--cli-sizes", help="MiB for the CLI rows (default: the smallest of --sizes)")


def _result(size: int, seconds: float, t10: float | None, s: Sampler) -> dict[str, Any]:
    s.stop()
    return {
        "size": size,
        "seconds": seconds,
        "t10": t10,
        "cpu_s": s.cpu_seconds,
        "rss_base": s.base,
        "rss_peak": max(s.peak(), s.base),
        "load": os.getloadavg()[0],
    }


def browser_from_cli(page: Any, sender: Sampler, name: str, size: int) -> dict[str, Any]:
    """One download in the page from `pea send`, click to file on disk."""
    row = page.locator(f'[data-testid=file][data-name="{name}"]')
    sender.mark()
    start = page.evaluate("Date.now()")
    t0 = time.monotonic()
    with page.expect_download(timeout=600_000) as info:
        row.locator("[data-testid=download]").click()
    dl = info.value
    dl.path()
    seconds = time.monotonic() - t0
    if dl.failure() or "verified" not in row.inner_text():
        raise RuntimeError(f"{name}: the page did not get it verified ({dl.failure()})")
    dl.delete()
    m = page.evaluate("window.__meters[window.__meters.length - 1]")
    t10 = (m["t10"] - start) / 1000 if m["t10"] else None
    return _result(size, seconds, t10, sender)


def cli_receives(link: str, name: str, size: int, out: Path) -> dict[str, Any]:
    """One `pea receive --only NAME`, from its file list to the verified file."""
    r = receive(link, "--out", out, "--only", name, "--overwrite")
    sampler = Sampler(r.pid)
    try:
        r.wait_event(lambda e: e.get("event") == "listing", 120, "the file list")
        sampler.mark()
        if r.wait(600) != 0:
            raise RuntimeError(f"pea receive failed:\n{r.output()}")
    finally:
        r.kill()
    listed = r.first_time(lambda e: e.get("event") == "listing")
    ended = r.first_time(lambda e: e.get("event") == "saved")
    at10 = r.first_time(lambda e: e.get("event") == "download" and e["bytes"] >= FIRST)
    assert listed is not None and ended is not None
    (out / name).unlink()
    return _result(size, ended - listed, at10 - listed if at10 else None, sampler)


def _cli_idle(p: CliProc, within: float = 300) -> None:
    """`pea send` hashes its files once, when it starts: wait until it has (CPU idle)."""
    import psutil

    proc = psutil.Process(p.pid)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.cpu_percent(0.5) > 10:
        pass


@contextmanager
def _nodes() -> Iterator[tuple[Any, Any]]:
    from tests.support.procs import pea_node, redis_server

    with (
        redis_server() as redis,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as a,
        pea_node(redis_url=redis.url, ice_servers="[]", log_level="warning") as b,
    ):
        yield a, b


def measure(pw: Any, args: argparse.Namespace, folder: Path, keep: Any) -> None:
    """Every CLI transfer of the run; `keep(direction, size, i, result)` records one."""
    from bench.transfer import launch, new_page, write_random

    sizes = [int(s) * MiB for s in (args.cli_sizes or args.sizes).split(",")]
    if not args.cli_sizes:
        sizes = sizes[:1]
    files = {z: folder / f"cli-{z // MiB}.bin" for z in sizes}
    for z, path in files.items():
        if not path.exists():
            write_random(path, z)
    out = folder / "cli-out"
    browser = launch(pw, "cli")
    with _nodes() as (a, b), contextlib.ExitStack() as stack:
        sender, link = send(a.url, *files.values())
        stack.callback(sender.kill)
        _cli_idle(sender)
        on_b = b.url + "/" + link[link.index("#") :]
        for z, path in files.items():
            for i in range(args.runs):
                page = new_page(browser)
                page.goto(on_b)
                page.locator("[data-testid=status]").filter(has_text="Connected").wait_for()
                keep(
                    "cli → browser", z, i, browser_from_cli(page, Sampler(sender.pid), path.name, z)
                )
                page.context.close()
                keep("cli → cli", z, i, cli_receives(on_b, path.name, z, out))
        sharer = new_page(browser)
        sharer.goto(a.url + "/")
        sharer.locator("input[type=file]").set_input_files([str(p) for p in files.values()])
        shared = sharer.locator("[data-testid=share-link]").get_attribute("href")
        assert shared
        sharer.wait_for_function("() => window.__hashing === 0", polling=200)
        from_b = b.url + "/" + shared[shared.index("#") :]
        for z, path in files.items():
            for i in range(args.runs):
                keep("browser → cli", z, i, cli_receives(from_b, path.name, z, out))
        sharer.context.close()
    browser.close()


def run_line(d: str, z: int, i: int, r: dict[str, Any]) -> str:
    t10 = f"{r['t10']:.2f} s" if r["t10"] is not None else "-"
    return (
        f"cli {d} {z // MiB} MiB run {i}: {z / MiB / r['seconds']:.2f} MiB/s "
        f"({r['seconds']:.1f} s), first 10 MiB {t10}, CLI CPU {r['cpu_s']:.1f} s, "
        f"RSS {r['rss_base'] / MiB:.0f} → {r['rss_peak'] / MiB:.0f} MiB, "
        f"load average {r['load']:.1f}"
    )


def write_docs(text: str, at: float | None = None) -> None:
    """The CLI rows as their own section after "### Current figures" in docs/benchmarks.md
    (the browser rows' rewrite keeps it; the next run that measures the CLI replaces it)."""
    from tests.support.procs import ROOT

    module = "bench.transfer_cli" if sys.argv[0].endswith("transfer_cli.py") else "bench.transfer"
    cmd = " ".join([module, *shown_command(sys.argv[1:])])
    body = (
        f"Command: `make web && .venv/bin/python -m {cmd}`, measured "
        f"{stamp(at)} on this project's machine kind "
        f"(2 cores). {text}"
    )
    path = ROOT / "docs" / "benchmarks.md"
    doc = replace_section(
        path.read_text(), SECTION, body, within="## Transfer", after="### Current figures"
    )
    path.write_text(doc)


def report(results: list[Any]) -> str:
    """The CLI rows as a markdown table (medians of the runs), or "" if none ran."""
    if not results:
        return ""
    from bench.transfer import med, table

    rows: list[tuple[str, ...]] = [
        (
            "direction",
            "size",
            "median",
            "first 10 MiB",
            "CLI CPU",
            "CLI RSS peak (growth)",
            "runs (MiB/s)",
        )
    ]
    for d in DIRECTIONS:
        for z in sorted({r["size"] for dd, _, _, r in results if dd == d}):
            rs = [r for dd, zz, _, r in results if dd == d and zz == z]
            speeds = [z / MiB / r["seconds"] for r in rs]
            t10 = [r["t10"] for r in rs if r["t10"] is not None]
            rows.append(
                (
                    d,
                    f"{z // MiB} MiB",
                    f"{med(speeds):.1f} MiB/s",
                    f"{med(t10):.2f} s" if t10 else "-",
                    f"{med([r['cpu_s'] for r in rs]):.1f} s, "
                    f"{100 * med([r['cpu_s'] / r['seconds'] for r in rs]):.0f} %",
                    f"{max(r['rss_peak'] for r in rs) / MiB:.0f} MiB "
                    f"(+{max(r['rss_peak'] - r['rss_base'] for r in rs) / MiB:.0f} MiB)",
                    ", ".join(f"{s:.1f}" for s in speeds),
                )
            )
    loads = [r["load"] for *_, r in results]
    return (
        "The command-line peer (`pea send` / `pea receive`, aiortc): medians of "
        f"{max(i for _, _, i, _ in results) + 1} run(s), each on a new connection; CLI CPU "
        "is its CPU time over the transfer and its share of one core (cli → cli: the "
        "receiver's; on a loaded machine the CPU time is the steadier figure: the speed "
        "follows the CPU it gets), its RSS growth is over what it held before the file's "
        "bytes; the machine's 1-minute load average during these runs was "
        f"{min(loads):.1f} to {max(loads):.1f}:\n\n" + table(rows)
    )


def main() -> None:
    from playwright.sync_api import sync_playwright

    from bench.transfer import only_loopback

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="64")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true", help=f"replace {SECTION} in docs")
    add_arguments(ap)
    args = ap.parse_args()
    args.cli_sizes = args.cli_sizes or args.sizes
    if not only_loopback():
        import shlex

        cmd = " ".join(
            shlex.quote(a) for a in [sys.executable, "-m", "bench.transfer_cli", *sys.argv[1:]]
        )
        os.execvp("unshare", ["unshare", "-n", "sh", "-c", f"ip link set lo up; exec {cmd}"])
    results: list[Any] = []

    def keep(*entry: Any) -> None:
        results.append(entry)
        print(run_line(*entry), flush=True)

    with tempfile.TemporaryDirectory(prefix="pea-bench-cli-") as d, sync_playwright() as pw:
        measure(pw, args, Path(d), keep)
    text = report(results)
    print(text)
    if args.write_docs:
        write_docs(text)


if __name__ == "__main__":
    main()
