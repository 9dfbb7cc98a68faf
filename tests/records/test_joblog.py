"""Job output: masking, following, and the cap on its size."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from homeport.masking import Masker
from homeport.records.joblog import (
    MAX_LINE_BYTES,
    STOP_GRACE_SECONDS,
    STOPPING_LINE,
    JobLog,
    follow,
    tail_dir,
)


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


CAP = 64 * 1024


def _disk_bytes(path: Path) -> int:
    total = path.stat().st_size if path.exists() else 0
    if tail_dir(path).is_dir():
        total += sum(f.stat().st_size for f in tail_dir(path).iterdir())
    return total


def _numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines if line.startswith("line ")]


def test_a_long_log_keeps_its_start_and_end_within_the_cap(tmp_path: Path) -> None:
    """Past the cap the log keeps the head and the newest output, with a note on the gap."""
    log = JobLog(tmp_path / "job.log", max_bytes=CAP)
    written = 0
    for i in range(20_000):
        line = f"line {i} " + "x" * (i % 50)
        log.write(line)
        written += len(line) + 1
        assert _disk_bytes(log.path) <= CAP
    shown = list(follow(log.path, lambda: True))
    notes = [line for line in shown if "left out" in line]
    assert len(notes) == 1
    head, tail = shown[: shown.index(notes[0])], shown[shown.index(notes[0]) + 1 :]
    assert _numbers(head) == list(range(len(head)))
    assert _numbers(tail) == list(range(20_000 - len(tail), 20_000))
    kept = sum(len(line) + 1 for line in head + tail)
    assert kept > CAP // 2
    left_out = written - kept
    assert f"[... {left_out / 1024:.1f} KiB of output left out here" in notes[0]


def test_a_follower_sees_the_same_start_and_end_and_what_comes_after(tmp_path: Path) -> None:
    """A reader that starts late gets head, note and tail, then new lines until the end."""
    log = JobLog(tmp_path / "job.log", max_bytes=CAP)
    for i in range(10_000):
        log.write(f"line {i}")
    done = threading.Event()
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(follow(log.path, done.is_set)))
    reader.start()
    for i in range(10_000, 10_050):
        log.write(f"line {i}")
    done.set()
    reader.join(10)
    numbers = _numbers(seen)
    assert numbers == sorted(set(numbers)) and numbers[0] == 0 and numbers[-1] == 10_049
    assert sum("left out" in line for line in seen) == 1


def test_a_slow_reader_is_told_what_it_missed(tmp_path: Path) -> None:
    """Output that rotates away before a reader gets to it is replaced by a note, in order."""
    log = JobLog(tmp_path / "job.log", max_bytes=CAP)
    far_ahead, done = threading.Event(), threading.Event()

    def writer() -> None:
        for i in range(40_000):
            log.write(f"line {i}")
            if i == 30_000:
                far_ahead.set()
        done.set()

    seen: list[str] = []
    thread = threading.Thread(target=writer)
    thread.start()
    for line in follow(log.path, done.is_set):
        seen.append(line)
        if line == "line 5000":  # in the tail: wait until it has rotated away
            far_ahead.wait(30)
    thread.join()
    numbers = _numbers(seen)
    assert numbers == sorted(set(numbers)) and numbers[-1] == 39_999
    assert any("left out" in line for line in seen)
    # Every jump in the numbering has a note between the lines on either side.
    for before, after in itertools.pairwise(seen):
        if before.startswith("line ") and after.startswith("line "):
            assert int(after.split()[1]) == int(before.split()[1]) + 1, (before, after)


def test_the_cap_holds_across_writers(tmp_path: Path) -> None:
    """A second writer of the same job (a job run again) goes on in the tail within the cap."""
    first = JobLog(tmp_path / "job.log", max_bytes=CAP)
    for i in range(5_000):
        first.write(f"line {i}")
    second = JobLog(tmp_path / "job.log", max_bytes=CAP)
    for i in range(5_000, 10_000):
        second.write(f"line {i}")
    assert _disk_bytes(first.path) <= CAP
    shown = list(follow(first.path, lambda: True))
    assert _numbers(shown)[-1] == 9_999 and _numbers(shown)[0] == 0


def test_an_overlong_line_is_cut(tmp_path: Path) -> None:
    """One line longer than a log line may be is cut and marked, not dropped."""
    log = JobLog(tmp_path / "job.log", Masker(["s3cretvalue"]), max_bytes=CAP)
    log.write("s3cretvalue " + "é" * 20_000)
    (line,) = follow(log.path, lambda: True)
    assert line.startswith("*** é") and line.endswith("[line cut]")
    assert len(line.encode()) < MAX_LINE_BYTES


def test_follow_gives_up_after_its_timeout(tmp_path: Path) -> None:
    """A job that never ends is followed until the timeout, then a line says so."""
    log = JobLog(tmp_path / "job.log")
    log.write("-----> Queued")
    start = time.monotonic()
    lines = list(follow(log.path, lambda: False, timeout=0.5))
    assert 0.5 <= time.monotonic() - start < 3
    assert lines[0] == "-----> Queued"
    assert lines[-1].startswith("-----> stopped waiting after 0s (HOMEPORT_JOB_TIMEOUT")


def test_follow_stops_soon_after_the_receiver_stops(tmp_path: Path) -> None:
    """A stopping receiver gives the job a few seconds to end, then stops waiting, saying so."""
    log = JobLog(tmp_path / "job.log")
    log.write("building")
    began = time.monotonic()
    lines = list(follow(log.path, lambda: False, stopping=lambda: True))
    took = time.monotonic() - began
    assert lines == ["building", STOPPING_LINE]
    assert STOP_GRACE_SECONDS <= took < STOP_GRACE_SECONDS + 1


def test_follow_shows_the_end_of_a_job_that_ends_while_the_receiver_stops(
    tmp_path: Path,
) -> None:
    """A job stopped beside the receiver ends within the grace: its own last line is shown."""
    log = JobLog(tmp_path / "job.log")
    done = threading.Event()

    def stopped_job() -> None:
        time.sleep(0.5)
        log.write("-----> blog failed: stopped: homeport was shut down; push again to retry")
        done.set()

    threading.Thread(target=stopped_job).start()
    lines = list(follow(log.path, done.is_set, stopping=lambda: True))
    assert lines == ["-----> blog failed: stopped: homeport was shut down; push again to retry"]
