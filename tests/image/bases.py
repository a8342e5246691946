"""The base images deploy/Dockerfile and deploy/compose.yaml name, made from Debian's
own packages: no image registry is reachable here.

`mmdebstrap` makes a minimal Debian 12 root filesystem with the packages a base
needs, and `docker import` gives it the name the Dockerfile or compose file uses,
so both stay exactly what real users build and run. The root filesystem tarballs
are cached by image name and recipe: a second run on the same machine only
imports them again if the engine lost them.

Debian 12 has Node 18 (the Dockerfile's default is 20): the node base is named for
18 and the build passes NODE_VERSION=18. Python is 3.11 in both. The machine's TLS
proxy CA (from /usr/local/share/ca-certificates) is trusted in these test bases
only, so `npm ci` and `pip install` work inside `docker build` here; the project's
Dockerfile never sees it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .engine import CACHE, DockerError, Engine

SUITE = "bookworm"
# What Debian 12 ships; the build args that select the matching base names.
DEBIAN_NODE = "18"
DEBIAN_PYTHON = "3.11"
BUILD_ARGS = {"NODE_VERSION": DEBIAN_NODE, "PYTHON_VERSION": DEBIAN_PYTHON}
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_DIR = Path("/usr/local/share/ca-certificates")
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
EATMYDATA = Path("/usr/share/mmdebstrap/hooks/eatmydata")
# Docs, manuals and translations are not needed in a base image.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


@dataclass(frozen=True)
class Recipe:
    packages: tuple[str, ...]
    changes: tuple[str, ...]  # Dockerfile instructions for `docker import --change`
    hooks: tuple[str, ...] = field(default=())  # mmdebstrap --customize-hook commands
    # Images that fetch from the package registries during the build trust the proxy.
    proxy_ca: bool = False


# By repository name: what the Dockerfile and compose file expect of each image.
RECIPES: dict[str, Recipe] = {
    "node": Recipe(
        ("nodejs", "npm", "ca-certificates"),
        (
            f"ENV {PATH_ENV}",
            "ENV LANG=C.UTF-8",
            "ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt",
            'CMD ["node"]',
        ),
        proxy_ca=True,
    ),
    # Debian's pip trusts the system CA store: no certificate setting in this image's
    # environment, so none reaches the runtime stage built on it.
    "python": Recipe(
        ("python3", "python3-venv", "python-is-python3", "ca-certificates"),
        (f"ENV {PATH_ENV}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'),
        proxy_ca=True,
    ),
    "redis": Recipe(
        ("redis-server", "redis-tools"),
        (f"ENV {PATH_ENV}", "WORKDIR /data", 'CMD ["redis-server"]'),
        # The official image runs as uid 999 with /data its own.
        (
            'chroot "$1" sh -c "groupmod -g 999 redis 2>/dev/null; usermod -u 999 -g 999 redis; '
            'mkdir -p /data && chown 999:999 /data"',
        ),
    ),
    "nginx": Recipe(
        ("nginx-light",),
        (f"ENV {PATH_ENV}", 'CMD ["nginx", "-g", "daemon off;"]'),
        # Log to the container's output, like the official image.
        (
            'ln -sf /dev/stdout "$1/var/log/nginx/access.log"',
            'ln -sf /dev/stderr "$1/var/log/nginx/error.log"',
        ),
    ),
}


def dockerfile_bases(dockerfile: Path, build_args: dict[str, str]) -> list[str]:
    """The external images a Dockerfile's FROM lines name, with ARG defaults and build_args."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    names: list[str] = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0].upper() == "ARG" and "=" in words[1] and not stages:
            k, v = words[1].split("=", 1)
            args[k] = build_args.get(k, v)
        elif words[0].upper() == "FROM":
            name = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], words[1])
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.add(words[3])
            if name not in stages and name not in names:
                names.append(name)
    return names


def compose_bases(compose: dict[str, object]) -> list[str]:
    """The images `docker compose up` starts: services under a profile (coturn's `turn`)
    start only when asked for, so their images are not needed here."""
    services = compose["services"]
    assert isinstance(services, dict)
    return sorted(
        {s["image"] for s in services.values() if "build" not in s and not s.get("profiles")}
    )


def _ca_files() -> list[Path]:
    return sorted(CA_DIR.glob("*.crt")) if CA_DIR.is_dir() else []


def recipe_key(name: str) -> str:
    """Changes with the image name, the recipe, the proxy CA and the Debian sources."""
    recipe = RECIPES[name.split(":")[0]]
    h = hashlib.sha256(
        json.dumps([name, SUITE, recipe.packages, recipe.changes, recipe.hooks]).encode()
    )
    for f in [*(_ca_files() if recipe.proxy_ca else []), SOURCES]:
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


_LOCKS: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="mmdebstrap")


_RUNNING: set[subprocess.Popen[bytes]] = set()


def stop_all() -> None:
    """End every mmdebstrap still running (the tests are over), by its process group."""
    for proc in list(_RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


def prefetch(names: list[str], cache: Path = CACHE) -> None:
    """Start making these root filesystems in the background (ensure() waits for them)."""
    for name in names:
        _POOL.submit(rootfs, name, cache, [])


def rootfs(name: str, cache: Path, log: list[str]) -> Path:
    """The cached root filesystem tarball for image `name`, made if missing."""
    with _LOCKS[name]:
        return _rootfs(name, cache, log)


def _rootfs(name: str, cache: Path, log: list[str]) -> Path:
    recipe = RECIPES[name.split(":")[0]]
    out = cache / "bases" / f"{name.replace(':', '_').replace('/', '_')}-{recipe_key(name)}.tar"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f"{name.replace(':', '_')}-*.tar*"):
        stale.unlink()
    part = out.with_name(out.stem + ".part.tar")
    hooks = list(recipe.hooks)
    cas = _ca_files() if recipe.proxy_ca else []
    if cas:
        hooks = [
            f"copy-in {' '.join(map(str, cas))} {CA_DIR}/",
            'chroot "$1" update-ca-certificates',
            *hooks,
        ]
    argv = [
        "mmdebstrap", "--quiet", "--variant=minbase", "--mode=root",
        f"--include={','.join(recipe.packages)}",
        *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDES),
        *(f"--customize-hook={h}" for h in hooks),
        # dpkg without fsync after every file: the tarball is all that is kept.
        *([f"--hook-dir={EATMYDATA}"] if EATMYDATA.is_dir() else ["--dpkgopt=force-unsafe-io"]),
        "--format=tar", SUITE, str(part),
    ]  # fmt: skip
    if SOURCES.is_file():
        argv.append(str(SOURCES))
    started = time.monotonic()
    logfile = out.with_suffix(".log")
    # A session of its own: on a timeout, or when the tests end first, the whole
    # group (apt, dpkg) goes.
    with (
        logfile.open("w") as logf,
        subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
        ) as proc,
    ):
        _RUNNING.add(proc)
        try:
            proc.wait(timeout=1200)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise DockerError(f"mmdebstrap for {name} ran out of time") from None
        finally:
            _RUNNING.discard(proc)
    if proc.returncode != 0:
        output = logfile.read_text(errors="replace")
        raise DockerError(f"mmdebstrap for {name} failed:\n{output[-4000:]}")
    part.rename(out)
    log.append(
        f"{name}: mmdebstrap {time.monotonic() - started:.0f} s, {out.stat().st_size >> 20} MiB"
    )
    return out


def ensure(engine: Engine, names: list[str], cache: Path = CACHE) -> list[str]:
    """Each named image present in the engine, made from Debian packages when missing.
    Returns what was done, for the report."""
    log: list[str] = []
    state_file = engine.data.parent / "bases.json"
    try:
        state: dict[str, list[str]] = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}

    def current(name: str) -> bool:
        if state.get(name, [""])[0] != recipe_key(name):
            return False
        res = engine.docker(
            "image", "inspect", "--format", "{{.Id}}", name, check=False, timeout=30
        )
        return res.returncode == 0 and res.stdout.strip() == state[name][1]

    todo = [n for n in names if not current(n)]
    tars = dict(zip(todo, _POOL.map(lambda n: rootfs(n, cache, log), todo), strict=True))
    for name, tar in tars.items():
        recipe = RECIPES[name.split(":")[0]]
        changes = [a for c in recipe.changes for a in ("--change", c)]
        started = time.monotonic()
        image_id = engine.docker("import", *changes, str(tar), name, timeout=300).stdout.strip()
        state[name] = [recipe_key(name), image_id]
        log.append(f"{name}: imported in {time.monotonic() - started:.0f} s")
    state_file.write_text(json.dumps(state, indent=1))
    return log
