"""Tiny test apps built from the local busybox base and pushed to the local registry."""

from __future__ import annotations

from pathlib import Path

from tests.support.cluster import build_and_push

REGISTRY = "127.0.0.1:5000"
BASE = "homeport-base:busybox"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Writes $GREETING where httpd serves it, so a test can read the release's env over HTTP.
SERVE = 'echo "$GREETING" > /www/env.txt; exec httpd -f -p 8080 -h /www'
MISSING = f"{REGISTRY}/homeport-test-missing@sha256:{'0' * 63}1"


def build(name: str, tag: str, *, index: str, healthz: bool = True, crash: bool = False) -> str:
    """Build, push and return `127.0.0.1:5000/<name>@sha256:...` (`tag` names the variant)."""
    files = {"www/index.html": index + "\n", "www/.variant": tag}
    if healthz:
        files["www/healthz"] = "ok\n"
    cmd = ["sh", "-c", "exit 1"] if crash else ["sh", "-c", SERVE]
    return build_and_push(name, files, cmd)
