"""How the benchmarks put their figures into docs/benchmarks.md (`--write-docs`).

A generated section runs from its heading to an end marker. Text written by hand
below the marker, before the next heading (what a run's figures mean, what was found
with a profiler), stays when the next run replaces the figures; without the marker
(a section from before it existed) the whole section up to the next heading is
replaced, as it always was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

END = "<!-- end of generated figures: text below this line is kept by the next run -->"

# Options that say where a run kept its raw figures, not how it measured them.
_NOT_THE_COMMAND = ("--json", "--from-json")


def stamp(at: float | None = None) -> str:
    """When figures were measured (`at`, seconds since the epoch; now by default), in UTC:
    a report made later from saved figures (`--from-json`) keeps the run's time."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def shown_command(argv: Sequence[str]) -> list[str]:
    """The arguments a reader needs to repeat the run: without --write-docs, and without
    the raw-figure files (a path on the machine that ran it)."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a in _NOT_THE_COMMAND:
            skip = True
        elif a.split("=", 1)[0] in _NOT_THE_COMMAND or a == "--write-docs":
            continue
        else:
            out.append(a)
    return out


def replace(doc: str, heading: str, body: str, *, within: str = "", after: str = "") -> str:
    """`doc` with the section `heading` (searched below `within`, a higher heading) set to
    `body` and the end marker. A section not there yet goes after the section `after`
    (or at the end of `within`'s introduction), and `within` is added when missing."""
    section = f"{heading}\n\n{body.rstrip()}\n\n{END}\n"
    top = doc.find(within) if within else 0
    if top == -1:
        return doc.rstrip("\n") + f"\n\n{within}\n\n" + section
    start = doc.find(heading, top)
    if start != -1:
        nxt = doc.find("\n##", start + 1)
        stop = len(doc) if nxt == -1 else nxt + 1
        end = doc.find(END, start, stop)
        if end != -1:
            return doc[:start] + section + doc[end + len(END) + 1 :]
        return doc[:start] + section + ("" if nxt == -1 else "\n" + doc[nxt + 1 :])
    anchor = doc.find(after, top) if after else -1
    at = doc.find("\n##", (anchor if anchor != -1 else top) + 1)
    if at == -1:
        return doc.rstrip("\n") + "\n\n" + section
    return doc[: at + 1] + section + "\n" + doc[at + 1 :]
