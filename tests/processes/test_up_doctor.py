"""`homeport up` runs doctor beside its start-up and prints what fails as warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import stop
from tests.support.servers import free_port, wait_healthy
from tests.support.waiting import wait_until


def test_up_warns_about_a_failing_check_and_serves_anyway(
    tmp_path: Path, docker_services: str, apps_namespace: str
) -> None:
    """A wrong registry is a warning with its fix; the receiver answers all the same."""
    from tests.support.cluster import KUBECONFIG

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(
        HOMEPORT_DATA_DIR=str(tmp_path / "data"),
        HOMEPORT_LISTEN=f"127.0.0.1:{port}",
        HOMEPORT_KUBECONFIG=str(KUBECONFIG),
        HOMEPORT_NAMESPACE=apps_namespace,
        HOMEPORT_REGISTRY="127.0.0.1:1",
        HOMEPORT_WORKERS="1",
    )
    output = tmp_path / "up.out"
    with output.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "homeport", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}", alive=proc), "homeport up did not answer"
        line = wait_until(
            lambda: [x for x in output.read_text().splitlines() if "warning: registry:" in x],
            timeout=120,
            what="the doctor's warning",
        )[0]
        assert "cannot push to 127.0.0.1:1" in line
        assert "fix: start the registry (`docker run -d --name registry" in line
    finally:
        stop(proc, "homeport up")
