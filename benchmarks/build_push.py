"""Build + push time: homeport's builder against the docker CLI on the same context.

Run: .venv/bin/python benchmarks/build_push.py [--rounds N]
Needs the services (scripts/services up) and the base image (scripts/base-image).
Warm: nothing changed since the last build, every step cached and every layer already in the
registry. Cold: the cache is bypassed (nocache / --no-cache), so every step runs and the
random-data layer is new and pushed. Both build with BuildKit: the baseline is
`docker buildx build --push` on the same engine, from a checkout made beforehand (not timed).
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import git

from homeport.builder import build_and_push
from homeport.manifest import Manifest
from tests.support.registry import delete_repository

REGISTRY = "127.0.0.1:5000"
MEMORY = 1024**3
DOCKERFILE = """\
FROM homeport-base:busybox
COPY deps/ /deps/
RUN /bin/busybox dd if=/dev/urandom of=/blob bs=1M count=16 2>/dev/null && echo built
COPY www/ /www/
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def _make_app(root: Path) -> tuple[Path, Path, str]:
    """A work tree with ~300 small files, pushed to a bare repo; returns (bare, checkout, sha)."""
    work, bare = root / "work", root / "app.git"
    work.mkdir()
    git("init", "-q", "-b", "main", str(work), cwd=root)
    git("init", "-q", "--bare", str(bare), cwd=root)
    rng = random.Random(7)  # noqa: S311 - filler bytes, not secrets
    (work / "Dockerfile").write_text(DOCKERFILE)
    for i in range(100):
        path = work / "deps" / f"lib{i // 10}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(20_000))
    for i in range(200):
        path = work / "www" / f"page{i}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<p>page {i}</p>\n" * 50)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "bench app", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    return bare, work, git("rev-parse", "HEAD", cwd=work)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    suffix = uuid.uuid4().hex[:6]
    app, cli_app = f"bench{suffix}", f"benchcli{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        bare, checkout, commit = _make_app(Path(tmp))
        tag = commit[:12]
        lines: list[str] = []

        def homeport(nocache: bool) -> None:
            build_and_push(
                repo_path=bare,
                app=app,
                commit=commit,
                manifest=Manifest(),
                registry=REGISTRY,
                build_memory=MEMORY,
                build_cache=5 * 1024**3,
                min_free_disk=2 * 1024**3,
                timeout=600,
                emit=lines.append,
                max_blob_bytes=256 * 1024**2,
                max_context_bytes=1024**3,
                nocache=nocache,
            )

        def cli(nocache: bool) -> None:
            ref = f"{REGISTRY}/{cli_app}:{tag}"
            build = ["docker", "buildx", "build", "--progress=plain", "--push", "-t", ref]
            build += ["--label", f"org.opencontainers.image.revision={commit}", "--label"]
            build += [f"org.opencontainers.image.source={cli_app}"]
            if nocache:
                build.append("--no-cache")
            subprocess.run([*build, str(checkout)], check=True, capture_output=True)

        try:
            homeport(False)  # prime: the first build of each fills the cache
            cli(False)
            results: dict[str, dict[str, list[float]]] = {
                "warm": {"homeport": [], "cli": []},
                "cold": {"homeport": [], "cli": []},
            }
            for round_ in range(rounds):
                for mode, nocache in (("warm", False), ("cold", True)):
                    order = [("homeport", homeport), ("cli", cli)]
                    if round_ % 2:
                        order.reverse()
                    for name, action in order:
                        results[mode][name].append(_timed(lambda a=action, n=nocache: a(n)))
        finally:
            for name in (app, cli_app):
                delete_repository(name)
                ids = subprocess.run(
                    ["docker", "images", "-q", f"{REGISTRY}/{name}"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
                if ids:
                    subprocess.run(["docker", "rmi", "-f", *set(ids)], capture_output=True)

    print(f"build + push, median of {rounds} rounds (seconds)")
    print(f"{'':6} {'homeport':>9} {'buildx CLI':>11} {'ratio':>7}")
    for mode in ("warm", "cold"):
        ours = statistics.median(results[mode]["homeport"])
        theirs = statistics.median(results[mode]["cli"])
        print(f"{mode:6} {ours:9.2f} {theirs:11.2f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
