"""Packs pushed to (and fetched by) homeport are stored by git index-pack in bounded memory."""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
import zlib
from collections.abc import Iterator
from hashlib import sha1
from pathlib import Path

import httpx
import pytest
from dulwich.objects import Blob

from homeport import apps
from homeport.git import fetch
from tests.support.gitwork import WorkTree
from tests.support.servers import TOKEN, Homeport

ZERO = "0" * 40


@pytest.fixture
def receiver(tmp_path: Path, redis_url: str) -> Iterator[Homeport]:
    """A receiver without workers: pushes to other branches than main are only stored."""
    hp = Homeport(data_dir=tmp_path / "data", redis_url=redis_url).start(workers=0)
    yield hp
    hp.stop()


def _peak_mb(pid: int) -> float:
    status = (Path("/proc") / str(pid) / "status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def _object(kind: int, payload: bytes, prefix: bytes = b"") -> bytes:
    """One pack entry: type and size header, a delta's base id, the zlib-deflated payload."""
    size = len(payload)
    byte, size = (kind << 4) | (size & 0x0F), size >> 4
    header = bytearray()
    while size:
        header.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    header.append(byte)
    return bytes(header) + prefix + zlib.compress(payload, 9)


def _pack(*entries: bytes) -> bytes:
    body = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    return body + sha1(body, usedforsecurity=False).digest()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _send(hp: Homeport, app: str, new: str, pack: bytes) -> httpx.Response:
    """A raw receive-pack request creating refs/heads/feature at new, carrying pack."""
    command = f"{ZERO} {new} refs/heads/feature\0report-status side-band-64k\n".encode()
    return httpx.post(
        f"{hp.url}/git/{app}.git/git-receive-pack",
        content=_pkt(command) + b"0000" + pack,
        headers={"Content-Type": "application/x-git-receive-pack-request"},
        auth=("git", TOKEN),
        timeout=120,
    )


def _refs(hp: Homeport, app: str) -> str:
    repo = hp.data_dir / "repos" / f"{app}.git"
    return subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref"], capture_output=True, text=True, check=True
    ).stdout


def test_200_mb_of_zeros_is_received_in_bounded_memory(receiver: Homeport, tmp_path: Path) -> None:
    """A tiny pack that inflates to 200 MB is stored whole, the receiver staying under 150 MB."""
    size = 200 * 1024**2
    work = WorkTree(tmp_path / "work", dockerfile=None)
    with (work.path / "zeros.bin").open("wb") as out:
        for _ in range(size // 1024**2):
            out.write(bytes(1024**2))
    work.commit("zeros")
    app = f"z{uuid.uuid4().hex[:8]}"
    pushed = work.push(receiver.remote(app), "main:feature")
    assert pushed.returncode == 0, pushed.stderr
    assert receiver.server is not None
    assert _peak_mb(receiver.server.pid) < 150
    repo = receiver.data_dir / "repos" / f"{app}.git"
    stored = subprocess.run(
        ["git", "--git-dir", str(repo), "cat-file", "-s", "feature:zeros.bin"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(stored.stdout) == size


def test_a_corrupt_pack_is_refused_with_a_reason(receiver: Homeport) -> None:
    """Garbage after a pack header is refused as `unpack ...`; no ref, no file is left."""
    app = f"c{uuid.uuid4().hex[:8]}"
    garbage = b"PACK" + struct.pack(">II", 2, 1) + b"\xff" * 64
    answer = _send(receiver, app, "1" * 40, garbage + sha1(garbage, usedforsecurity=False).digest())
    assert answer.status_code == 200
    assert b"unpack the pack could not be stored:" in answer.content
    assert b"push again" in answer.content
    assert _refs(receiver, app) == ""
    objects = receiver.data_dir / "repos" / f"{app}.git" / "objects"
    left = [p.name for p in objects.iterdir() if p.name not in ("pack", "info")]
    assert left == [] and list((objects / "pack").iterdir()) == []


def test_a_delta_that_expands_to_gigabytes_is_refused(receiver: Homeport) -> None:
    """A delta claiming a 2 GiB result stops at git's memory cap; the receiver stays small."""
    base = Blob.from_string(bytes(65536))
    # Each 0x80 copies 64 KiB from the base: 2 GiB out of 32 KiB of instructions.
    count = 2 * 1024**3 // 65536
    delta = _varint(65536) + _varint(count * 65536) + b"\x80" * count
    pack = _pack(
        _object(3, base.as_raw_string()),
        _object(7, delta, prefix=bytes.fromhex(base.id.decode())),
    )
    app = f"d{uuid.uuid4().hex[:8]}"
    answer = _send(receiver, app, base.id.decode(), pack)
    assert answer.status_code == 200
    assert b"unpack the pack could not be stored:" in answer.content
    assert b"memory" in answer.content
    assert _refs(receiver, app) == ""
    assert receiver.server is not None
    assert _peak_mb(receiver.server.pid) < 150


def test_a_push_over_the_size_cap_names_the_setting(tmp_path: Path, redis_url: str) -> None:
    """HOMEPORT_MAX_PUSH_BYTES stops index-pack and the client reads which limit it hit."""
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_MAX_PUSH_BYTES": "64k"},
    ).start(workers=0)
    try:
        work = WorkTree(tmp_path / "work", dockerfile=None)
        work.write("random.bin", os.urandom(512 * 1024))
        work.commit("big")
        result = work.push(hp.remote("capped"), "main:feature")
        assert result.returncode != 0
        assert "HOMEPORT_MAX_PUSH_BYTES (64 KB)" in result.stderr
        assert _refs(hp, "capped") == ""
    finally:
        hp.stop()


def test_a_webhook_fetch_is_stored_by_index_pack(receiver: Homeport, tmp_path: Path) -> None:
    """Fetching a commit over HTTP into an app repository stores one pack git can read."""
    work = WorkTree(tmp_path / "work", dockerfile=None)
    commit = work.commit("one", **{"a.txt": "a" * 10_000})
    app = f"f{uuid.uuid4().hex[:8]}"
    assert work.push(receiver.remote(app), "main:feature").returncode == 0
    data_dir = tmp_path / "mirror"
    apps.create_repo(data_dir, "mirror", "main").close()
    fetch.fetch(
        data_dir=data_dir,
        repo_path=apps.repo_path(data_dir, "mirror"),
        app="mirror",
        url=receiver.remote(app),
        ssh_url="",
        ref="refs/heads/feature",
        commit=commit,
        allow_file=False,
        emit=lambda line: None,
        timeout=60,
        max_blob_bytes=256 * 1024**2,
    )
    packs = list((apps.repo_path(data_dir, "mirror") / "objects" / "pack").glob("pack-*.idx"))
    assert len(packs) == 1
    check = subprocess.run(
        ["git", "--git-dir", str(apps.repo_path(data_dir, "mirror")), "fsck", "--no-dangling"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
