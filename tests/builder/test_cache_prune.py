"""How often the BuildKit cache is pruned: pure logic over a stamp file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from homeport.builder.build import PRUNE_EVERY, prune_due


def test_the_cache_is_pruned_once_per_interval(tmp_path: Path) -> None:
    """The first build prunes; the next ones within the interval skip; after it, prune again."""
    stamp = tmp_path / "build-cache.pruned"
    assert prune_due(stamp)
    assert not prune_due(stamp)
    earlier = time.time() - PRUNE_EVERY - 1
    os.utime(stamp, (earlier, earlier))
    assert prune_due(stamp)
    assert not prune_due(stamp)


def test_an_unwritable_stamp_prunes_every_time(tmp_path: Path) -> None:
    """Without a place to remember the last prune, every build prunes as before."""
    stamp = tmp_path / "missing-dir" / "build-cache.pruned"
    assert prune_due(stamp)
    assert prune_due(stamp)
