"""Start-up time of the CLI: `homeport --help` against a bare interpreter in the same run.

    .venv/bin/python benchmarks/cli_start.py [--rounds 40] [--against PATH]

Runs `python -m homeport --help` and `python -c pass` alternately and prints the medians and
minimums. --against PATH also times the homeport of another checkout (put first on
PYTHONPATH), e.g. a worktree of an earlier commit, to compare two versions in one run.
Needs nothing running: no command here talks to a server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(command: list[str], pythonpath: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=pythonpath, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--against", type=Path, help="another checkout to time as well")
    args = parser.parse_args()
    runs: dict[str, tuple[list[str], Path]] = {
        "bare python": ([sys.executable, "-c", "pass"], ROOT),
        "homeport --help": ([sys.executable, "-m", "homeport", "--help"], ROOT),
    }
    if args.against:
        runs[f"--help of {args.against}"] = (
            [sys.executable, "-m", "homeport", "--help"],
            args.against.resolve(),
        )
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (command, path) in runs.items():
            times[name].append(_timed(command, path))
    for name, taken in times.items():
        print(
            f"{name:<40} median {statistics.median(taken) * 1000:6.1f} ms,"
            f" min {min(taken) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
