"""Runtime log options and lines, and which process a pod belongs to (pure, no cluster)."""

from __future__ import annotations

import pytest

from homeport.deployer import podlogs, workloads
from homeport.errors import InvalidInput, NotFound


def test_since_takes_durations() -> None:
    """Plain seconds and s, m, h, d suffixes; anything else is refused saying the form."""
    assert [podlogs.parse_since(t) for t in ("90", "30s", "10m", "2h", "1d")] == [
        90,
        30,
        600,
        7200,
        86400,
    ]
    for bad in ("yesterday", "-5m", "0", "10w", "99999d", ""):
        with pytest.raises(InvalidInput, match="since must be"):
            podlogs.parse_since(bad)


def test_tail_is_a_bounded_line_count() -> None:
    """0 to MAX_TAIL lines."""
    assert podlogs.parse_tail("0") == 0 and podlogs.parse_tail("250") == 250
    for bad in ("-1", "ten", str(podlogs.MAX_TAIL + 1), "١٢"):
        with pytest.raises(InvalidInput, match="tail must be"):
            podlogs.parse_tail(bad)


def test_lines_name_their_process_and_pod_and_sort_by_time() -> None:
    """Each line gets its time (microseconds), process and pod; keys sort as times do."""
    key, line = podlogs.format_line("web", "blog-1-a", b"2026-11-27T23:50:01.5Z GET /\n")
    assert line == b"2026-11-27T23:50:01.500000Z web[blog-1-a]: GET /\n"
    later, _ = podlogs.format_line("web", "blog-1-a", b"2026-11-27T23:50:01.123456789Z x\n")
    earlier, _ = podlogs.format_line("web", "blog-1-a", b"2026-11-27T23:50:01Z x\n")
    assert earlier < later < key


def _pod(name: str, owner: str, pod_hash: str) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "labels": {"pod-template-hash": pod_hash},
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{owner}-{pod_hash}"}],
        }
    }


def test_a_pod_belongs_to_the_deployment_of_its_replicaset() -> None:
    """`blog-worker-<hash>` is the worker's, `blog-<hash>` web's; a bare pod is nobody's."""
    assert workloads.owner(_pod("p1", "blog", "5d8f")) == "blog"
    assert workloads.owner(_pod("p2", "blog-worker", "77aa")) == "blog-worker"
    assert workloads.owner({"metadata": {"name": "blog-run-0123456789ab"}}) is None
    assert workloads.process_name("blog", "blog") == "web"
    assert workloads.process_name("blog", "blog-worker") == "worker"


def test_an_unknown_process_names_those_there_are() -> None:
    """Naming a process the app does not have is NotFound listing the ones it has."""
    web = workloads.Process("web", {"metadata": {"name": "blog"}})
    assert workloads.pick("blog", [web], None) == [web]
    with pytest.raises(NotFound, match="has no process 'worker'; its processes are: web"):
        workloads.pick("blog", [web], "worker")
