"""Tiny test apps built from the local busybox base and pushed to the local registry."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

REGISTRY = "127.0.0.1:5000"
BASE = "homeport-base:busybox"
REPO_ROOT = Path(__file__).resolve().parents[2]
# Writes $GREETING where httpd serves it, so a test can read the release's env over HTTP.
SERVE = 'echo "$GREETING" > /www/env.txt; exec httpd -f -p 8080 -h /www'
MISSING = f"{REGISTRY}/homeport-test-missing@sha256:{'0' * 63}1"


def base_image() -> None:
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "base-image"), BASE], check=True, stdout=subprocess.DEVNULL
    )


def build(name: str, tag: str, *, index: str, healthz: bool = True, crash: bool = False) -> str:
    """Build, push and return `127.0.0.1:5000/<name>@sha256:...`."""
    base_image()
    ref = f"{REGISTRY}/{name}:{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp)
        (ctx / "www").mkdir()
        (ctx / "www" / "index.html").write_text(index + "\n")
        if healthz:
            (ctx / "www" / "healthz").write_text("ok\n")
        cmd = ["sh", "-c", "exit 1"] if crash else ["sh", "-c", SERVE]
        (ctx / "Dockerfile").write_text(
            f"FROM {BASE}\nCOPY www/ /www/\nEXPOSE 8080\nCMD {json.dumps(cmd)}\n"
        )
        subprocess.run(
            ["docker", "build", "-q", "-t", ref, str(ctx)], check=True, stdout=subprocess.DEVNULL
        )
    subprocess.run(["docker", "push", "-q", ref], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{json .RepoDigests}}", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    digests = [d for d in json.loads(out) if d.startswith(f"{REGISTRY}/{name}@")]
    return digests[0]
