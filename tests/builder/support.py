"""Helpers for builder tests."""

from __future__ import annotations

import time
from collections.abc import Callable

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
