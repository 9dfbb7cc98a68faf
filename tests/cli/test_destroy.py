"""`homeport apps destroy` asks before it removes anything."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

from homeport import apps
from tests.support.servers import Homeport
from tests.support.waiting import wait_until


def test_destroy_asks_for_the_name_on_a_terminal(receiver: Homeport) -> None:
    """On a terminal, a name typed wrong removes nothing and exits 1."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "homeport", "apps", "destroy", "blog"],
        env={**receiver.env(), "HOMEPORT_URL": receiver.url},
        stdin=side,
        stdout=side,
        stderr=side,
    )
    os.close(side)
    seen = b""

    def asked() -> bool:
        nonlocal seen
        if select.select([main], [], [], 0.2)[0]:
            seen += os.read(main, 4096)
        return b"Type the app name (blog) to confirm:" in seen

    wait_until(asked, timeout=30, what="the confirmation prompt", interval=0)
    os.write(main, b"blgo\n")
    assert proc.wait(timeout=30) == 1
    rest = b""
    try:
        while chunk := os.read(main, 4096):
            rest += chunk
    except OSError:  # the terminal closes with the process
        pass
    os.close(main)
    assert b"This removes blog: its pods, Secrets, images, repository" in seen
    assert b"'blgo' is not 'blog'; nothing was removed" in rest
    assert apps.exists(receiver.data_dir, "blog")


def test_destroy_without_a_terminal_needs_yes(receiver: Homeport) -> None:
    """Without a terminal and without --yes, it is a usage error and nothing is removed."""
    apps.create_repo(receiver.data_dir, "blog", "main")
    out = subprocess.run(
        [sys.executable, "-m", "homeport", "apps", "destroy", "blog", "--volumes"],
        env={**receiver.env(), "HOMEPORT_URL": receiver.url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "without a terminal, pass --yes" in out.stderr
    assert apps.exists(receiver.data_dir, "blog")
