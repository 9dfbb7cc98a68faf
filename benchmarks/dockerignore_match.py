""".dockerignore matching time: a hostile pattern against a deep path, and a typical file.

Hostile: 14 x `**/` then `x` against a path 30 directories deep (a backtracking regex takes
exponential time on it). Baseline in the same run: a plain one-segment pattern against the
same path. Typical: 15 everyday patterns against 10,000 paths, for scale.
Target: hostile <= 10 ms a match.
"""

from __future__ import annotations

import random
import statistics
import time

from common import ROOT  # noqa: F401 - puts the checkout on sys.path

from homeport.builder.dockerignore import DockerIgnore

DEEP_PATH = "/".join(f"d{i}" for i in range(30)) + "/file.txt"
ROUNDS = 200
TYPICAL = """node_modules
*.log
**/*.pyc
.git
dist/**
build
**/__pycache__
*.md
!README.md
tmp/*
**/.DS_Store
coverage
*.swp
.env*
docs/**/*.png
"""


def _per_match_ms(text: str, path: str) -> float:
    """Median time of one match, each round on a freshly read .dockerignore (no memo)."""
    times = []
    for _ in range(ROUNDS):
        ignore = DockerIgnore(text)
        start = time.perf_counter()
        ignore.ignored(path)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _typical_paths() -> list[str]:
    rng = random.Random(1)  # noqa: S311 - file names, not secrets
    words = ["src", "lib", "app", "tests", "docs", "img", "a", "module", "util", "x"]
    paths = []
    for i in range(10_000):
        dirs = [rng.choice(words) for _ in range(rng.randint(0, 6))]
        ext = rng.choice(["py", "js", "pyc", "md", "png", "log", "txt"])
        paths.append("/".join([*dirs, f"file{i}.{ext}"]))
    return paths


def main() -> None:
    hostile = _per_match_ms("**/" * 14 + "x", DEEP_PATH)
    plain = _per_match_ms("x", DEEP_PATH)
    print(f"30-deep path, median of {ROUNDS}:")
    print(f"  plain pattern 'x' (baseline): {plain * 1000:8.1f} us")
    print(f"  14 x '**/' then 'x':          {hostile * 1000:8.1f} us (target <= 10 ms)")
    paths = _typical_paths()
    ignore = DockerIgnore(TYPICAL)
    start = time.perf_counter()
    ignored = sum(ignore.ignored(path) for path in paths)
    took = time.perf_counter() - start
    print(
        f"15 typical patterns x {len(paths):,} paths: {took * 1000:.0f} ms "
        f"({took / len(paths) * 1e6:.0f} us a path, {ignored:,} ignored)"
    )


if __name__ == "__main__":
    main()
