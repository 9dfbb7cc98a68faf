"""Job output: masking and following."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from homeport.joblog import JobLog, Masker, follow


def test_secrets_are_masked() -> None:
    """Every secret value is replaced, longest first; short values are left alone."""
    mask = Masker(["hunter22", "hunter2222", "on"])
    assert mask("pw=hunter2222 and hunter22, on") == "pw=*** and ***, on"


def test_follow_yields_lines_as_written_until_the_end(tmp_path: Path) -> None:
    """A reader sees each line soon after it is written and stops when the job ends."""
    log = JobLog(tmp_path / "job.log", Masker(["s3cretvalue"]))
    done = threading.Event()

    def writer() -> None:
        for i in range(3):
            log.write(f"line {i} s3cretvalue")
            time.sleep(0.2)
        done.set()

    seen: list[tuple[float, str]] = []
    thread = threading.Thread(target=writer)
    start = time.monotonic()
    thread.start()
    for line in follow(log.path, done.is_set):
        seen.append((time.monotonic() - start, line))
    thread.join()
    assert [line for _, line in seen] == [f"line {i} ***" for i in range(3)]
    # Arrived progressively, not all at the end.
    assert seen[0][0] < 0.2 < seen[2][0]
