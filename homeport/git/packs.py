"""Storing pushed and fetched packs with `git index-pack`, in bounded memory.

dulwich inflates every object of an incoming pack whole to hash it, so a push of a 200 KB
pack holding 200 MB of zeros costs 200 MB and more of the receiver's memory. `git index-pack
--stdin` streams large objects to disk instead; this object store hands it the pack as it
arrives and leaves the rest of dulwich (refs, hooks, upload-pack) as it is.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dulwich.object_store import DiskObjectStore, PackInputTooLarge
from dulwich.pack import Pack
from dulwich.repo import Repo

from homeport.git import gitcli
from homeport.settings import show_size

log = logging.getLogger(__name__)

_PACK_NAME = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Bytes handed to index-pack per read from the client.
_CHUNK = 256 * 1024
# Largest file assumed when sizing index-pack's memory cap, unless the caller knows better
# (HOMEPORT_MAX_BLOB_BYTES). index-pack streams big objects, so the cap only matters for
# deltas, whose base and result it holds; a pack can claim a delta result of any size.
DEFAULT_MAX_BLOB_BYTES = 256 * 1024**2


class PackRefused(OSError):
    """index-pack did not store the pack.

    An OSError because dulwich's receive-pack reports exactly those as `unpack <reason>`
    and moves no ref.
    """


class IndexPackStore(DiskObjectStore):
    """A repository's object store whose incoming packs go through `git index-pack`."""

    def __init__(self, path: str, *, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        super().__init__(path)
        self.index_pack_memory = gitcli.memory_cap(max_blob_bytes)

    def add_thin_pack(
        self,
        read_all: Callable[[int], bytes],
        read_some: Callable[[int], bytes] | None,
        progress: Callable[..., None] | None = None,
        *,
        max_input_size: int | None = None,
    ) -> Pack:
        """Store the pack read from read_some (or read_all); completes thin packs."""
        # index-pack writes into a directory of this push's own, so a refused or cut-off
        # pack leaves nothing behind (git's own temporary packs wait for a gc).
        incoming = Path(tempfile.mkdtemp(prefix="incoming-", dir=self.path))
        try:
            name, received = self._run_index_pack(
                read_some or read_all, incoming / "pack.pack", max_input_size
            )
            target = os.path.join(self.pack_dir, f"pack-{name}")
            os.makedirs(self.pack_dir, exist_ok=True)
            # git makes them 0444 whatever the umask; the data dir is homeport's alone.
            for part in ("pack.pack", "pack.idx"):
                os.chmod(incoming / part, 0o400)
            # The .pack first: readers take a pack as complete once its .idx is there.
            os.replace(incoming / "pack.pack", target + ".pack")
            os.replace(incoming / "pack.idx", target + ".idx")
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        log.debug("stored a %s pack in %s", show_size(received), self.path)
        for pack in self.packs:
            if pack._basename == target:
                return pack
        raise PackRefused(f"git index-pack stored no pack (it answered {name!r}); push again")

    def _run_index_pack(
        self, read: Callable[[int], bytes], out: Path, max_input_size: int | None
    ) -> tuple[str, int]:
        """Run index-pack on what read() returns, writing out; its pack name and bytes read."""
        args = ["index-pack", "--stdin", "--fix-thin"]
        if max_input_size:
            args.append(f"--max-input-size={max_input_size}")
        with tempfile.TemporaryFile() as answer, tempfile.TemporaryFile() as errors:
            proc = gitcli.start(
                Path(self.path).parent,
                *args,
                str(out),
                memory=self.index_pack_memory,
                stdout=answer,
                stderr=errors,
            )
            try:
                received = _pump(read, proc, max_input_size)
                assert proc.stdin is not None
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                status = proc.wait()
            finally:
                gitcli.stop(proc)
            answer.seek(0)
            # "pack\t<name>" (or "keep\t<name>"): the pack's checksum.
            name = answer.read(200).decode("ascii", "replace").strip().rpartition("\t")[2]
            errors.seek(0)
            said = errors.read(4096).decode("utf-8", "replace").strip().splitlines()
        if max_input_size and received > max_input_size:
            raise PackInputTooLarge(_too_large(max_input_size))
        if status != 0:
            reason = said[-1].removeprefix("fatal: ") if said else f"exit status {status}"
            log.warning("git index-pack refused a pack in %s: %s", self.path, "; ".join(said))
            if "maximum allowed size" in reason and max_input_size:
                raise PackInputTooLarge(_too_large(max_input_size))
            if "out of memory" in reason.lower():
                reason = (
                    f"unpacking it needs more than {show_size(self.index_pack_memory)} of "
                    "memory (a delta expands to a huge object)"
                )
            raise PackRefused(f"the pack could not be stored: {reason}; push again")
        if not _PACK_NAME.match(name):
            raise PackRefused(f"git index-pack answered {name[:80]!r}, not a pack name; push again")
        return name, received


def _pump(read: Callable[[int], bytes], proc: subprocess.Popen[bytes], cap: int | None) -> int:
    """Copy the pack into index-pack until the client or index-pack is done; return bytes read."""
    assert proc.stdin is not None
    received = 0
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            break
        received += len(chunk)
        try:
            proc.stdin.write(chunk)
        except BrokenPipeError:
            # index-pack stopped reading: the pack ended, or it refused it (its status says).
            break
        if cap and received > cap:
            break
    return received


def _too_large(cap: int) -> str:
    return (
        f"the push is larger than HOMEPORT_MAX_PUSH_BYTES ({show_size(cap)}); push fewer or "
        "smaller files at a time, or raise the limit"
    )


def open_repo(path: Path, *, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> Repo:
    """The bare repository at path, with packs stored through index-pack."""
    store: Any = IndexPackStore(os.path.join(path, "objects"), max_blob_bytes=max_blob_bytes)
    return Repo(str(path), object_store=store)
