"""The deploy job's stages against real workers, Docker, the registry and the cluster."""

from __future__ import annotations

import subprocess
import uuid

from tests.support.gitwork import WorkTree
from tests.support.registry import REGISTRY, delete_repository, push_foreign, tags
from tests.support.servers import Homeport


def test_retention_deletes_only_what_homeport_pushed(homeport: Homeport, work: WorkTree) -> None:
    """A tag another tool pushed to <registry>/<app> survives every deploy and its cleanup."""
    app = f"ret-{uuid.uuid4().hex[:8]}"
    homeport.stop_workers()
    homeport.extra_env["HOMEPORT_KEEP_RELEASES"] = "1"
    homeport.start_workers(2)
    foreign = f"{REGISTRY}/{app}:from-elsewhere"
    try:
        push_foreign(foreign)
        commits = []
        for n in range(3):
            commits.append(work.commit(f"v{n}", **{"index.html": f"v{n}"}))
            result = work.push(homeport.remote(app))
            assert result.returncode == 0, result.stderr[-2000:]
        # Retention ran after each deploy: homeport's old images went, the foreign one stayed.
        assert sorted(tags(app)) == sorted(["from-elsewhere", commits[-1][:12]])
        engine = subprocess.run(
            ["docker", "image", "inspect", foreign], capture_output=True, text=True
        )
        assert engine.returncode == 0, engine.stderr
        log = homeport.api("GET", f"/api/apps/{app}/jobs").json()["jobs"][0]
        assert log["status"] == "succeeded"
    finally:
        delete_repository(app)
        local = subprocess.run(
            ["docker", "images", "-q", f"{REGISTRY}/{app}"], capture_output=True, text=True
        ).stdout.split()
        if local:
            subprocess.run(["docker", "rmi", "-f", *set(local)], capture_output=True)
