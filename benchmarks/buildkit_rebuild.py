"""Rebuild after a one-line code change: homeport's build + push against `docker buildx build`
+ push of the same context on the same engine, in the same run.

Run: .venv/bin/python benchmarks/buildkit_rebuild.py [--rounds N] [--deps N]
Needs the services (scripts/services up), the buildx plugin (scripts/buildx) and the base
image (scripts/base-image).

The app copies its sources in, then runs an expensive dependency step (one second of
"download" and 4 MB written per dependency) behind a cache mount, as the Dockerfiles of
`docker init`, uv, Go and Node guides do; so every code change re-runs that step.
Warm: the cache mount holds every dependency, so the step only copies them out.
Cold: a cache mount of its own and --no-cache, so every dependency is fetched again.
No mount: the same Dockerfile without the cache mount, rebuilt warm after a code change.
Each side builds its own copy of the app (one differing line) so neither reuses the
other's layers; the timed work is the same. Rounds alternate which side goes first.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from common import git

from homeport.builder import build_and_push
from homeport.manifest import Manifest
from homeport.registry import prune

REGISTRY = "127.0.0.1:5000"
FETCH = (
    "for dep in $(cat /src/deps.txt); do "
    "if [ ! -f /cache/$dep ]; then echo fetching $dep; sleep 1; "
    "/bin/busybox dd if=/dev/urandom of=/cache/$dep bs=1M count=4 2>/dev/null; fi; done; "
    "/bin/busybox cp -r /cache /deps"
)


def _dockerfile(mount: str | None) -> str:
    run = f"RUN --mount=type=cache,target=/cache,id={mount} " if mount else "RUN mkdir /cache && "
    return "\n".join(
        [
            "FROM homeport-base:busybox",
            "COPY . /src",
            run + FETCH,
            'CMD ["httpd", "-f", "-p", "8080", "-h", "/src/www"]',
        ]
    )


class App:
    """A work tree pushed to a bare repository, changed one line at a time."""

    def __init__(self, root: Path, side: str, deps: int) -> None:
        self.work, self.bare, self.side = root / "work", root / "app.git", side
        self.work.mkdir(parents=True)
        git("init", "-q", "-b", "main", str(self.work), cwd=root)
        git("init", "-q", "--bare", str(self.bare), cwd=root)
        # The CLI side builds from this directory: leave git's own files out, as homeport does.
        (self.work / ".dockerignore").write_text(".git\n")
        (self.work / "deps.txt").write_text(" ".join(f"dep{i}" for i in range(deps)) + "\n")
        (self.work / "www").mkdir()
        for i in range(50):
            (self.work / "www" / f"page{i}.html").write_text(f"<p>page {i}</p>\n" * 20)

    def commit(self, dockerfile: str, change: str) -> str:
        """Write the Dockerfile and a one-line change; commit and push; return the commit."""
        (self.work / "Dockerfile").write_text(dockerfile + "\n")
        (self.work / "www" / "index.html").write_text(f"<h1>{self.side} {change}</h1>\n")
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", change, cwd=self.work)
        git("push", "-q", str(self.bare), "main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deps", type=int, default=5)
    options = parser.parse_args()
    suffix = uuid.uuid4().hex[:6]
    names = {"homeport": f"rebuild{suffix}", "buildx": f"rebuildcli{suffix}"}
    results: dict[str, dict[str, list[float]]] = {
        mode: {"homeport": [], "buildx": []} for mode in ("warm", "cold", "no mount")
    }
    with tempfile.TemporaryDirectory() as tmp:
        apps = {side: App(Path(tmp) / side, side, options.deps) for side in names}

        def homeport(dockerfile: str, change: str, nocache: bool) -> Callable[[], object]:
            commit = apps["homeport"].commit(dockerfile, change)
            return lambda: build_and_push(
                repo_path=apps["homeport"].bare,
                app=names["homeport"],
                commit=commit,
                manifest=Manifest(),
                registry=REGISTRY,
                build_memory=2 * 1024**3,
                build_cache=5 * 1024**3,
                min_free_disk=2 * 1024**3,
                timeout=600,
                emit=lambda line: None,
                max_blob_bytes=256 * 1024**2,
                max_context_bytes=1024**3,
                nocache=nocache,
            )

        def buildx(dockerfile: str, change: str, nocache: bool) -> Callable[[], object]:
            commit = apps["buildx"].commit(dockerfile, change)
            ref = f"{REGISTRY}/{names['buildx']}:{commit[:12]}"
            argv = ["docker", "buildx", "build", "--progress=plain", "--push", "-t", ref]
            argv += ["--label", f"org.opencontainers.image.revision={commit}"]
            argv += ["--label", f"org.opencontainers.image.source={names['buildx']}"]
            argv += ["--no-cache"] if nocache else []
            work = apps["buildx"].work
            return lambda: subprocess.run([*argv, str(work)], check=True, capture_output=True)

        sides = {"homeport": homeport, "buildx": buildx}
        try:
            warm = _dockerfile(f"bench-{suffix}")
            plain = _dockerfile(None)
            for prepare in sides.values():  # fill the shared cache mount, prime layers
                prepare(warm, "prime", False)()
                prepare(plain, "prime", False)()
            for round_ in range(options.rounds):
                order = list(sides.items())
                if round_ % 2:
                    order.reverse()
                for side, prepare in order:
                    change = f"round {round_}"
                    results["warm"][side].append(_timed(prepare(warm, change, False)))
                    cold = _dockerfile(f"bench-{suffix}-cold-{side}-{round_}")
                    results["cold"][side].append(_timed(prepare(cold, change, True)))
                    results["no mount"][side].append(_timed(prepare(plain, change, False)))
        finally:
            for name in names.values():
                prune(REGISTRY, name, set())
                ids = subprocess.run(
                    ["docker", "images", "-q", f"{REGISTRY}/{name}"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
                if ids:
                    subprocess.run(["docker", "rmi", "-f", *set(ids)], capture_output=True)

    print(
        f"rebuild after a one-line change, {options.deps} dependencies of 1 s each, "
        f"median of {options.rounds} rounds (seconds)"
    )
    print(f"{'':9} {'homeport':>9} {'buildx CLI':>11} {'ratio':>7}")
    for mode, times in results.items():
        ours, theirs = statistics.median(times["homeport"]), statistics.median(times["buildx"])
        print(f"{mode:9} {ours:9.2f} {theirs:11.2f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
