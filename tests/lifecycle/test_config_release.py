"""Release commands in a push and config changes as releases, through git, the CLI and a worker."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.cli import run_cli as _cli
from tests.support.cluster import Kube, Poller, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport

DOCKERFILE = """FROM homeport-base:busybox
COPY . /www
CMD ["/www/start.sh"]
"""
# FATAL stands for any setting that keeps the app from starting.
START = """#!/bin/sh
if [ -n "$FATAL" ]; then echo "fatal: FATAL is set" >&2; exit 1; fi
echo "$GREETING" > /www/env.txt
exec httpd -f -p 8080 -h /www
"""
MANIFEST = """[env]
GREETING = "from the manifest"

[healthcheck]
timeout = 20

[release]
command = ["sh", "-c", "echo migrating data; echo migration done"]
"""


def _releases(hp: Homeport, app: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = hp.api("GET", f"/api/apps/{app}/releases").json()["releases"]
    return found


def test_release_command_output_and_config_releases(
    homeport: Homeport, kube: Kube, apps_namespace: str, tmp_path: Any
) -> None:
    """A push shows its release command; config set releases, crashes roll back, --no-deploy
    stores."""
    app = f"cfg{uuid.uuid4().hex[:8]}"
    work = WorkTree(tmp_path / "app", dockerfile=DOCKERFILE)
    work.write("start.sh", START, mode=0o755)
    work.write("homeport.toml", MANIFEST)
    work.write("index.html", "hello\n")
    work.commit("first")

    def greeting() -> tuple[int, str]:
        status, body = service_proxy_get(kube, apps_namespace, app, "env.txt")
        return status, body.strip()

    # Before the first deploy a change is stored, and the answer says when it applies.
    early = _cli(homeport, "config", "set", app, "GREETING=early")
    assert early.returncode == 0, early.stderr
    assert f"stored; {app} has no live release yet, so it applies on the first deploy" in (
        early.stdout
    )

    pushed = work.push(homeport.remote(app))
    assert pushed.returncode == 0, pushed.stderr
    # git pads "remote:" lines with spaces.
    said = [line.rstrip() for line in pushed.stderr.splitlines()]
    start = said.index(
        f"remote: -----> Running the release command of {app} v1:"
        " sh -c 'echo migrating data; echo migration done'"
    )
    assert said[start + 1 : start + 3] == [
        "remote:        migrating data",
        "remote:        migration done",
    ]
    rolling = next(i for i, line in enumerate(said) if line.startswith("remote: -----> Rolling"))
    assert rolling > start + 2  # the web pods changed only after the command
    assert f"remote: -----> {app} v1 is live" in said
    assert greeting() == (200, "early")

    # A config set is a release of the live image with the new env, followed by the CLI.
    changed = _cli(homeport, "config", "set", app, "GREETING=hello")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert f"-----> Releasing the new config of {app}" in changed.stdout
    assert "the release command is not run for a config change (same image)" in changed.stdout
    assert f"-----> {app} v2 is live" in changed.stdout
    assert "hello" not in changed.stdout  # values stay masked
    assert greeting() == (200, "hello")
    v2, v1 = _releases(homeport, app)
    assert (v2["version"], v2["status"], v2["cause"]) == (2, "live", "config")
    assert (v2["image"], v2["commit"]) == (v1["image"], v1["commit"])
    assert (v1["status"], v1["cause"]) == ("superseded", "push")
    table = _cli(homeport, "releases", app).stdout.splitlines()
    assert table[0].split()[:4] == ["VERSION", "STATUS", "COMMIT", "CAUSE"]
    assert table[1].split()[:2] == ["v2", "live"] and table[1].split()[3] == "config"

    # --no-deploy only stores the change.
    stored = _cli(homeport, "config", "set", app, "GREETING=later", "--no-deploy")
    assert stored.returncode == 0, stored.stderr
    assert f"stored; applies with the next release of {app}" in stored.stdout
    assert len(_releases(homeport, app)) == 2
    assert greeting() == (200, "hello")
    shown = json.loads(_cli(homeport, "config", "show", app, "--json").stdout)
    assert set(shown["config"]) == {"GREETING"}

    # A config that makes the app crash is rolled back to the previous release's config;
    # the old pods answer throughout.
    with Poller(greeting) as poller:
        crashed = _cli(homeport, "config", "set", app, "FATAL=yes")
    assert crashed.returncode == 1, crashed.stdout
    assert f"{app} v3 failed: container exited with code 1" in crashed.stdout
    assert "rolled back to v2" in crashed.stdout
    assert "the new config stays stored" in crashed.stdout
    assert len(poller.answers) > 10
    assert set(poller.answers) == {(200, "hello")}
    v3, v2, _ = _releases(homeport, app)
    assert (v3["status"], v3["cause"], v2["status"]) == ("failed", "config", "live")

    # Unsetting the fatal value releases the stored config that was waiting.
    fixed = _cli(homeport, "config", "unset", app, "FATAL")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert greeting() == (200, "later")
    newest = _releases(homeport, app)[0]
    assert (newest["version"], newest["status"]) == (4, "live")

    # A rollback to an earlier config of the same image restores that config.
    rolled = _cli(homeport, "rollback", app, "--to", "2")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert greeting() == (200, "hello")
    newest = _releases(homeport, app)[0]
    assert (newest["version"], newest["cause"], newest["rollback_of"]) == (5, "rollback", 2)
