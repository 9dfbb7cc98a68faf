"""deploy/namespaced-kubeconfig: a kubeconfig that deploys into the apps namespace only."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cluster import KUBECONFIG, Kube
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "namespaced-kubeconfig"


@pytest.fixture
def home_namespace(kube: Kube) -> Iterator[str]:
    """A name for homeport's own namespace (its ServiceAccount), deleted afterwards."""
    from tests.support.cluster import delete_namespace

    name = f"hp-home-{uuid.uuid4().hex[:8]}"
    yield name
    delete_namespace(name)


def _make(apps: str, home: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
    return subprocess.run(
        [str(SCRIPT), apps, home], env=env, capture_output=True, text=True, timeout=120
    )


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _kubeconfig(tmp_path: Path, apps: str, home: str) -> Path:
    made = _make(apps, home)
    assert made.returncode == 0, made.stderr
    path = tmp_path / "homeport.kubeconfig"
    path.write_text(made.stdout)
    return path


def test_kubeconfig_reaches_the_apps_namespace_only(
    kube: Kube, apps_namespace: str, home_namespace: str, tmp_path: Path
) -> None:
    """The printed kubeconfig lists Deployments in the apps namespace, not Secrets or Nodes."""
    path = _kubeconfig(tmp_path, apps_namespace, home_namespace)
    config = yaml.safe_load(path.read_text())
    assert config["contexts"][0]["context"]["namespace"] == apps_namespace
    listed = _kubectl(path, "-n", apps_namespace, "get", "deployments")
    assert listed.returncode == 0, listed.stderr
    for denied in (
        ["-n", "kube-system", "get", "secrets"],
        ["get", "nodes"],
        ["-n", apps_namespace, "get", "secrets"],  # by name only, never listed
        ["-n", home_namespace, "get", "secrets"],
        ["-n", "default", "get", "deployments"],
    ):
        refused = _kubectl(path, *denied)
        assert refused.returncode != 0, denied
        assert "Forbidden" in refused.stderr, refused.stderr
    # A second run changes nothing: the same token still works.
    again = _make(apps_namespace, home_namespace)
    assert again.returncode == 0, again.stderr
    assert again.stdout == path.read_text()


def test_bad_namespace_names_are_refused(tmp_path: Path) -> None:
    """A namespace that is not a DNS label is one clear line, before anything is created."""
    made = _make("Apps_1", "homeport")
    assert made.returncode == 1
    assert made.stderr == (
        "namespaced-kubeconfig: 'Apps_1' is not a namespace name (a lower-case DNS label)\n"
    )
    assert made.stdout == ""


def test_homeport_deploys_with_the_namespaced_kubeconfig(
    tmp_path: Path,
    redis_url: str,
    docker_services: str,
    apps_namespace: str,
    home_namespace: str,
    work: WorkTree,
) -> None:
    """homeport with that kubeconfig instead of the admin one deploys an app that goes live,
    with a process and a cron entry, starts a cron run, removes both with the next push, and
    its ps, logs and one-off commands work with the same rights."""
    path = _kubeconfig(tmp_path, apps_namespace, home_namespace)
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_KUBECONFIG": str(path), "HOMEPORT_NAMESPACE": apps_namespace},
    ).start()
    parts = (
        '[processes.worker]\ncommand = ["sleep", "3600"]\n'
        '[cron.tick]\nschedule = "@hourly"\ncommand = ["echo", "tick"]\n'
    )
    try:
        app = f"app-{uuid.uuid4().hex[:8]}"
        work.commit("first", **{"index.html": "hello", "homeport.toml": parts})
        pushed = work.push(hp.remote(app))
        assert pushed.returncode == 0, pushed.stderr
        assert f"-----> {app} v1 is live" in pushed.stderr
        run = hp.api("POST", f"/api/apps/{app}/cron/tick/runs")
        assert run.status_code == 202, run.text
        ps = hp.api("GET", f"/api/apps/{app}/ps")
        assert ps.status_code == 200, ps.text
        assert {p["release"] for p in ps.json()["processes"]} == {1}, ps.text
        assert hp.api("GET", f"/api/apps/{app}/logs").status_code == 200
        body = {"command": ["sh", "-c", "echo ran; exit 3"]}
        one_off = hp.api("POST", f"/api/apps/{app}/runs", json=body)
        assert one_off.status_code == 202, one_off.text
        log = hp.api("GET", f"/api/apps/{app}/runs/{one_off.json()['id']}/log?follow=1")
        assert log.text == "ran\n"
        ended = hp.api("GET", f"/api/apps/{app}/runs/{one_off.json()['id']}")
        assert (ended.json()["status"], ended.json()["exit_code"]) == ("failed", 3)
        work.commit("second", **{"homeport.toml": ""})
        again = work.push(hp.remote(app))
    finally:
        hp.stop()
    assert again.returncode == 0, again.stderr
    assert "removed process worker" in again.stderr and "removed cron tick" in again.stderr
