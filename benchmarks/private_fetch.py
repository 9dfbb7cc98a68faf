"""First webhook fetch of a private repository with a long history: shallow vs full.

A repository of 2,000 commits whose history weighs about 50 MB (each commit rewrites a
25 KB file of random bytes), served on loopback by `git http-backend` behind Basic auth.
Measured: homeport's fetch stage as a webhook job runs it (fetch.fetch: stored
credentials, depth 1 by commit id, protocol v2) against the baseline in the same run, a
plain `git fetch` of the same commit with its whole history, through the same server with
the same credentials. Bytes are what the server sent; time is wall-clock; median of 3.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

from common import scratch

from homeport import apps
from homeport.git import credentials, fetch
from tests.support.gitservers import PrivateHttpGit, long_history

COMMITS = 2000
BLOB_BYTES = 25 * 1024
ROUNDS = 3
PASSWORD = "bench-token-0c4e2b"


def main() -> None:
    root = scratch("private-fetch")
    server = PrivateHttpGit(root / "served", "me", PASSWORD).start()
    try:
        started = time.perf_counter()
        ids = long_history(
            server.bare("me/blog"), COMMITS, BLOB_BYTES, files={"index.html": "hello\n"}
        )
        print(f"history: {COMMITS} commits written in {time.perf_counter() - started:.1f}s")
        url = server.url("me/blog")
        shallow_runs: list[tuple[float, int]] = []
        full_runs: list[tuple[float, int]] = []
        for n in range(ROUNDS):
            data_dir = root / f"data{n}"
            credentials.put(data_dir, f"http://127.0.0.1:{server.port}/me/", "me", PASSWORD)
            apps.create_repo(data_dir, "blog", "main").close()
            server.reset_count()
            started = time.perf_counter()
            fetch.fetch(
                data_dir=data_dir,
                repo_path=apps.repo_path(data_dir, "blog"),
                app="blog",
                url=url,
                ssh_url="",
                ref="refs/heads/main",
                commit=ids[-1],
                allow_file=False,
                emit=lambda line: None,
                timeout=600,
                max_blob_bytes=256 * 1024**2,
            )
            shallow_runs.append((time.perf_counter() - started, server.bytes_sent))

            full = root / f"full{n}.git"
            subprocess.run(["git", "init", "-q", "--bare", str(full)], check=True)
            # The baseline's credentials come the same way (a helper reading the environment).
            helper = "!f() { echo username=me; echo password=$BENCH_PASSWORD; }; f"
            server.reset_count()
            started = time.perf_counter()
            git_fetch = ["fetch", "-q", "--no-tags", url, ids[-1]]
            subprocess.run(
                ["git", "--git-dir", str(full), "-c", f"credential.helper={helper}", *git_fetch],
                check=True,
                env={"PATH": "/usr/bin:/bin", "BENCH_PASSWORD": PASSWORD, "HOME": str(root)},
            )
            full_runs.append((time.perf_counter() - started, server.bytes_sent))
        report("shallow (homeport)", shallow_runs)
        report("full git fetch", full_runs)
        s_time, s_bytes = medians(shallow_runs)
        f_time, f_bytes = medians(full_runs)
        print(f"shallow/full: bytes {s_bytes / f_bytes:.4f}, time {s_time / f_time:.3f}")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def medians(runs: list[tuple[float, int]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def report(name: str, runs: list[tuple[float, int]]) -> None:
    seconds, sent = medians(runs)
    each = ", ".join(f"{t:.2f}s/{b / 1e3:.1f}kB" for t, b in runs)
    print(f"{name:20} median {seconds:.2f}s, {sent / 1e3:.1f} kB sent  ({each})")


if __name__ == "__main__":
    main()
