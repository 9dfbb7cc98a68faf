"""One-off commands, runtime logs and ps, through the CLI and the API, on the test cluster."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from tests.support.cluster import Kube, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.processes import stop
from tests.support.servers import TOKEN, Homeport
from tests.support.waiting import wait_until

# Logs every request (-vv: the URL, then the status) to stderr, so a test can make it write.
DOCKERFILE = """FROM homeport-base:busybox
COPY . /www
RUN ["/bin/busybox", "ln", "-s", "busybox", "/bin/true"]
CMD ["httpd", "-f", "-vv", "-p", "8080", "-h", "/www"]
"""
MANIFEST = '[env]\nGREETING = "hello from the release"\n'


def _env(hp: Homeport) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=hp.url, HOMEPORT_TOKEN=TOKEN)
    return env


def _cli(hp: Homeport, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        env=_env(hp),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run_pods(kube: Kube, namespace: str, app: str) -> list[str]:
    listed = kube.core.list_namespaced_pod(namespace, label_selector=f"homeport.dev/run-of={app}")
    return [p.metadata.name for p in listed.items]


class Reader:
    """A running CLI command whose stdout lines are collected as they arrive."""

    def __init__(self, hp: Homeport, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "homeport", *args],
            env=_env(hp),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> None:
        # The reading thread holds stdout: the process is waited for, then the thread ends.
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        finally:
            self._thread.join(timeout=30)
            stop(self.proc, " ".join(self.proc.args[2:]))


def _worker(app: str, image: str) -> dict[str, Any]:
    """Another process of the app, labelled as processes are: `<app>-worker`, part of the app."""
    own = {"app.kubernetes.io/part-of": app, "homeport.dev/process": "worker"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{app}-worker", "labels": own},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": own},
            "template": {
                "metadata": {"labels": own},
                "spec": {
                    "containers": [
                        {
                            "name": "worker",
                            "image": image,
                            "command": ["sh", "-c", "echo worker-up; exec sleep 3600"],
                        }
                    ],
                    "terminationGracePeriodSeconds": 1,
                },
            },
        },
    }


def _deployed(hp: Homeport, tmp_path: Path, app: str) -> WorkTree:
    work = WorkTree(tmp_path / app, dockerfile=None)
    work.commit("no Dockerfile yet", **{"index.html": "hi\n"})
    refused = work.push(hp.remote(app))
    assert refused.returncode != 0  # the app exists now, with no live release
    work.commit("app", Dockerfile=DOCKERFILE, **{"homeport.toml": MANIFEST})
    pushed = work.push(hp.remote(app))
    assert pushed.returncode == 0, pushed.stderr
    return work


def test_run_streams_output_exits_with_the_code_and_leaves_no_pod(
    homeport: Homeport, tmp_path: Path, kube: Kube, apps_namespace: str
) -> None:
    """`homeport run` prints the command's output, exits with its code (0, 7), removes the pod
    (also when interrupted); --detach gives an id whose status and log the API serves; bad
    input is a clear message."""
    app = f"run-{uuid.uuid4().hex[:6]}"
    work = WorkTree(tmp_path / app, dockerfile=None)
    work.commit("no Dockerfile yet", **{"index.html": "hi\n"})
    assert work.push(homeport.remote(app)).returncode != 0
    early = _cli(homeport, "run", app, "--", "true")
    assert early.returncode == 1
    assert f"app '{app}' has no live release to run a command in; push to deploy it first" in (
        early.stderr
    )
    conflict = homeport.api("POST", f"/api/apps/{app}/runs", json={"command": ["true"]})
    assert conflict.status_code == 409 and "has no live release" in conflict.json()["error"]
    work.commit("app", Dockerfile=DOCKERFILE, **{"homeport.toml": MANIFEST})
    assert work.push(homeport.remote(app)).returncode == 0

    seven = _cli(
        homeport, "run", app, "--", "sh", "-c", 'echo "out $GREETING"; echo err >&2; exit 7'
    )
    assert seven.returncode == 7, seven.stderr
    assert "out hello from the release\n" in seven.stdout and "err\n" in seven.stdout
    assert _cli(homeport, "run", app, "--", "true").returncode == 0
    absent = _cli(homeport, "run", app, "--", "no-such-command")
    assert absent.returncode == 128
    assert "failed: the command could not start:" in absent.stderr
    assert "no-such-command" in absent.stderr
    wait_until(lambda: _run_pods(kube, apps_namespace, app) == [], timeout=30, what="no run pods")

    detached = _cli(homeport, "run", app, "--detach", "--", "sh", "-c", "sleep 1; echo later")
    assert detached.returncode == 0, detached.stderr
    run = detached.stdout.strip()
    assert len(run) == 12 and _run_pods(kube, apps_namespace, app) == [f"{app}-run-{run}"]
    log = homeport.api("GET", f"/api/apps/{app}/runs/{run}/log?follow=1")
    assert (log.status_code, log.text) == (200, "later\n")
    status = homeport.api("GET", f"/api/apps/{app}/runs/{run}").json()
    assert (status["status"], status["exit_code"], status["release"]) == ("succeeded", 0, 1)
    assert status["command"] == ["sh", "-c", "sleep 1; echo later"]
    gone = homeport.api("GET", f"/api/apps/{app}/runs/{run}")
    assert gone.status_code == 404 and "ended and its exit code was read" in gone.json()["error"]
    wait_until(lambda: _run_pods(kube, apps_namespace, app) == [], timeout=30, what="pod removed")

    # Interrupting the CLI stops the command and removes its pod.
    reader = Reader(homeport, "run", app, "--", "sh", "-c", "echo started; exec sleep 300")
    try:
        wait_until(lambda: "started\n" in reader.lines, timeout=60, what="the command to start")
        reader.proc.send_signal(signal.SIGINT)
        assert reader.proc.wait(timeout=60) == 130
        assert reader.proc.stderr is not None
        assert "homeport: stopped run " in reader.proc.stderr.read()
    finally:
        reader.stop()
    wait_until(lambda: _run_pods(kube, apps_namespace, app) == [], timeout=60, what="pod gone")

    # Bad input: each a clear message.
    for body in ({"command": "ls"}, {"command": []}, {"command": ["ls", 1]}, {}):
        bad = homeport.api("POST", f"/api/apps/{app}/runs", json=body)
        assert bad.status_code == 400, (body, bad.text)
        assert "command must be a non-empty list of strings" in bad.json()["error"] or (
            "every item of command must be a string" in bad.json()["error"]
        )
    unknown = homeport.api("GET", f"/api/apps/{app}/runs/{'0' * 12}")
    assert unknown.status_code == 404 and f"has no run {'0' * 12}" in unknown.json()["error"]
    assert homeport.api("GET", f"/api/apps/{app}/runs/nope/log").status_code == 404
    worker = _cli(homeport, "run", app, "--process", "worker", "--", "true")
    assert worker.returncode == 1
    assert f"app '{app}' has no process 'worker'; its processes are: web" in worker.stderr
    empty = _cli(homeport, "run", app)
    assert empty.returncode == 2 and "name the command to run" in empty.stderr
    missing = homeport.api("POST", "/api/apps/no-such-app/runs", json={"command": ["true"]})
    assert missing.status_code == 404


def test_logs_follow_new_lines_and_ps_lists_the_pods(
    homeport: Homeport, tmp_path: Path, kube: Kube, apps_namespace: str
) -> None:
    """`homeport logs -f` prints a line the app writes after it started, prefixed with process
    and pod, and takes in pods that start later; `homeport ps` lists every process's pods with
    their release; bad options are clear."""
    app = f"logs-{uuid.uuid4().hex[:6]}"
    work = _deployed(homeport, tmp_path, app)

    table = _cli(homeport, "ps", app)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["PROCESS", "POD", "STATUS", "READY", "RESTARTS", "RELEASE", "AGE"]
    assert row.split()[0] == "web" and row.split()[2:6] == ["Running", "yes", "0", "v1"]
    data = json.loads(_cli(homeport, "ps", app, "--json").stdout)
    (web,) = data["processes"]
    assert (web["name"], web["deployment"], web["release"], len(web["pods"])) == ("web", app, 1, 1)
    pod = web["pods"][0]["name"]

    # --tail 0: only lines written after the stream started can show up.
    reader = Reader(homeport, "logs", app, "-f", "--tail", "0")
    try:
        marks: list[str] = []

        def shown() -> bool:
            marks.append(f"mark-{uuid.uuid4().hex[:8]}")
            service_proxy_get(kube, apps_namespace, app, marks[-1])
            return any(m in line for line in list(reader.lines) for m in marks)

        wait_until(shown, timeout=60, what="a new line in `homeport logs -f`", interval=0.5)
        line = next(line for line in reader.lines if any(m in line for m in marks))
        assert f" web[{pod}]: " in line and "url:/mark-" in line

        # Pods that start later join: a new release's, and another process's.
        work.commit("v2", **{"index.html": "two\n"})
        assert work.push(homeport.remote(app)).returncode == 0
        image = homeport.api("GET", f"/api/apps/{app}/releases").json()["releases"][0]["image"]
        kube.apps.create_namespaced_deployment(apps_namespace, _worker(app, image))

        def from_new_web() -> bool:
            marks.append(f"mark-{uuid.uuid4().hex[:8]}")
            service_proxy_get(kube, apps_namespace, app, marks[-1])
            return any(
                " web[" in x and f"[{pod}]" not in x and "url:/mark-" in x for x in reader.lines
            )

        wait_until(from_new_web, timeout=60, what="a line of the v2 pod", interval=0.5)
        wait_until(
            lambda: any(f" worker[{app}-worker-" in x and "worker-up" in x for x in reader.lines),
            timeout=60,
            what="the worker's first line",
        )
    finally:
        reader.stop()

    data = json.loads(_cli(homeport, "ps", app, "--json").stdout)
    assert [(p["name"], p["deployment"]) for p in data["processes"]] == [
        ("web", app),
        ("worker", f"{app}-worker"),
    ]
    web_pods = {(p["release"], p["status"]) for p in data["processes"][0]["pods"]}
    # The v1 pod may still be shutting down (its httpd waits out the grace period).
    assert (2, "Running") in web_pods and web_pods <= {(2, "Running"), (1, "Terminating")}
    assert data["processes"][1]["pods"][0]["name"].startswith(f"{app}-worker-")
    worker_only = _cli(homeport, "logs", app, "--process", "worker")
    assert worker_only.returncode == 0 and "worker-up" in worker_only.stdout
    assert " web[" not in worker_only.stdout

    recent = _cli(homeport, "logs", app, "--process", "web", "--tail", "5")
    assert recent.returncode == 0, recent.stderr
    assert any(m in recent.stdout for m in marks)
    shape = re.compile(rf"\d{{4}}-\d\d-\d\dT[\d:.]{{15}}Z web\[{app}-[a-z0-9-]+\]: ")
    assert all(shape.match(line) for line in recent.stdout.splitlines()), recent.stdout
    assert len(recent.stdout.splitlines()) <= 5
    only_web = _cli(homeport, "logs", app, "--process", "web", "--since", "10m")
    assert only_web.returncode == 0 and any(m in only_web.stdout for m in marks)

    nightly = _cli(homeport, "logs", app, "--process", "nightly")
    assert nightly.returncode == 1
    assert f"app '{app}' has no process 'nightly'; its processes are: web, worker" in (
        nightly.stderr
    )
    since = homeport.api("GET", f"/api/apps/{app}/logs?since=yesterday")
    assert since.status_code == 400 and "since must be a duration like" in since.json()["error"]
    tail = homeport.api("GET", f"/api/apps/{app}/logs?tail=-1")
    assert tail.status_code == 400 and "tail must be a number of lines" in tail.json()["error"]
