"""A work tree driven by the real git client."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.processes import stop

# A web app on the locally built base image (no image can be pulled here).
DOCKERFILE = """FROM homeport-base:busybox
COPY . /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


class WorkTree:
    """A git work tree; by default its first commit carries a Dockerfile that builds."""

    def __init__(self, path: Path, dockerfile: str | None = DOCKERFILE) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        if dockerfile is not None:
            self.write("Dockerfile", dockerfile)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
        }

    def git(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def write(self, name: str, content: str | bytes, mode: int | None = None) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        if mode is not None:
            target.chmod(mode)

    def commit(self, message: str = "change", **files: str) -> str:
        for name, content in files.items():
            self.write(name, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self, remote: str, *refspecs: str) -> subprocess.CompletedProcess[str]:
        return self.git("push", remote, *(refspecs or ("main",)), check=False)

    def push_async(self, remote: str, *refspecs: str) -> Push:
        """Start a push; its stderr (the "remote:" lines) can be read as it arrives."""
        return Push(
            ["git", "push", remote, *(refspecs or ("main",))],
            cwd=self.path,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so that stopping it reaches git's remote helper.
            start_new_session=True,
        )


class Push(subprocess.Popen[str]):
    """A running `git push`; leaving its `with` block stops it (and its remote helper)."""

    def __exit__(self, *exc: object) -> None:
        stop(self, "git push")
