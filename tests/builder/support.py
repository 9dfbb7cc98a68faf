"""Helpers for builder tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import requests

from homeport.builder import BuiltImage

REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = "homeport-base:busybox"

Build = Callable[..., BuiltImage]


class Recorder:
    """An emit callback keeping each line with the moment it arrived."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.times: list[float] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.times.append(time.monotonic())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def registry_tags(app: str) -> list[str]:
    response = requests.get(f"http://{REGISTRY}/v2/{app}/tags/list", timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json().get("tags") or [])


def dockerfile(*lines: str) -> str:
    return "\n".join([f"FROM {BASE_IMAGE}", *lines]) + "\n"


def said(lines: list[str], text: str) -> int:
    """Index of the first line in which a build step printed exactly `text` (plain progress:
    `#5 0.123 text`)."""
    pattern = re.compile(r"^\s+#\d+ \d+\.\d+ " + re.escape(text) + "$")
    return next(i for i, line in enumerate(lines) if pattern.match(line))


def processes_running(fragment: str) -> list[str]:
    """Command lines of this machine's processes that contain `fragment`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if fragment in text:
            found.append(text)
    return found
