"""Receiving a 50 MB push: homeport's smart-HTTP remote vs `git daemon` in the same run.

The push goes to a branch that does not deploy, so only receiving is measured.
Target: homeport / git daemon <= 1.3.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time

from common import Homeport, scratch, start_redis, timed

SIZE = 50 * 1024 * 1024
ROUNDS = 3


def _git(*args: str, cwd: object) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def main() -> None:
    work = scratch("push")
    src = work / "src"
    src.mkdir()
    _git("init", "-q", "-b", "feature", cwd=src)
    (src / "blob.bin").write_bytes(os.urandom(SIZE))
    _git("add", "-A", cwd=src)
    _git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "big", cwd=src)

    redis = start_redis(work / "redis")
    hp = Homeport(data_dir=work / "data", redis_url=redis.url).start(workers=0)
    daemon_root = work / "daemon"
    daemon_root.mkdir()
    port = hp.port + 1
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={daemon_root}",
            str(daemon_root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    ours: list[float] = []
    theirs: list[float] = []
    try:
        for i in range(ROUNDS):
            bare = daemon_root / f"r{i}.git"
            _git("init", "-q", "--bare", str(bare), cwd=work)
            theirs.append(
                timed(
                    ["git", "push", "-q", f"git://127.0.0.1:{port}/r{i}.git", "feature"],
                    cwd=src,
                    capture_output=True,
                )
            )
            ours.append(
                timed(
                    ["git", "push", "-q", hp.remote(f"r{i}"), "feature"],
                    cwd=src,
                    capture_output=True,
                )
            )
    finally:
        daemon.terminate()
        daemon.wait()
        hp.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"50 MB push, median of {ROUNDS}: homeport {a:.2f} s, git daemon {b:.2f} s")
    print(f"ratio homeport/git daemon: {a / b:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
