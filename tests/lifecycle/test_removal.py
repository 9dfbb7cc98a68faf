"""Apps with volumes, pushed and removed through the real server, git client and cluster."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from homeport.deployer.kube import Kube as Adapter
from homeport.settings import Settings
from tests.support import registry
from tests.support.cluster import KUBECONFIG, Kube, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.waiting import wait_until

DOCKERFILE = """FROM homeport-base:busybox
COPY start.sh /start.sh
CMD ["sh", "/start.sh"]
"""
# Appends its greeting to a file on the volume at start, then serves the volume.
START = """mkdir -p /data
echo "$GREETING" >> /data/history.txt
echo ok > /data/healthz
exec httpd -f -p 8080 -h /data
"""
MANIFEST = """[healthcheck]
path = "/healthz"
timeout = 90

[env]
GREETING = "{greeting}"
{volumes}"""
VOLUME = '\n[volumes.data]\npath = "/data"\nsize = "16Mi"\n'


def _manifest(work: WorkTree, greeting: str, volumes: str = VOLUME) -> None:
    work.write("homeport.toml", MANIFEST.format(greeting=greeting, volumes=volumes))


def _history(kube: Kube, namespace: str, app: str) -> list[str]:
    status, body = service_proxy_get(kube, namespace, app, "history.txt")
    assert status == 200, body
    return body.split()


def _left(namespace: str, app: str) -> dict[str, list[str]]:
    """Every object of the app the cluster still holds, by kind (Secrets by their names)."""
    settings = Settings(namespace=namespace, kubeconfig=str(KUBECONFIG))
    found: dict[str, list[str]] = {}
    with Adapter(settings) as kube:
        for kind in (
            "deployments",
            "replicasets",
            "pods",
            "services",
            "ingresses",
            "persistentvolumeclaims",
            "jobs",
            "cronjobs",
        ):
            items = kube.list(kind, selector=f"app.kubernetes.io/name={app}").get("items") or []
            if items:
                found[kind] = sorted(i["metadata"]["name"] for i in items)
        # The test is admin here: it may list Secrets, which homeport itself may not.
        secrets = kube.list("secrets").get("items") or []
        names = sorted(
            s["metadata"]["name"] for s in secrets if s["metadata"]["name"].startswith(app)
        )
        if names:
            found["secrets"] = names
    return found


def _cli(hp: Homeport, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "homeport", *args],
        env={**hp.env(), "HOMEPORT_URL": hp.url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_volumes_through_pushes_and_destroy(
    tmp_path: Path, homeport: Homeport, kube: Kube, apps_namespace: str
) -> None:
    """A bad [volumes] fails the push; data outlives pushes; destroy keeps only the volume."""
    app = f"vol-{uuid.uuid4().hex[:6]}"
    work = WorkTree(tmp_path / "work", dockerfile=DOCKERFILE)
    work.write("start.sh", START)
    remote = homeport.remote(app)

    # 1. A bad [volumes] table is refused naming the key.
    _manifest(work, "one", '\n[volumes.data]\npath = "data"\nsize = "16Mi"\n')
    work.commit("bad volume")
    pushed = work.push(remote)
    assert pushed.returncode != 0
    assert 'homeport.toml: volumes.data.path = "data" is not allowed' in pushed.stderr

    # 2. Pushed with the volume, the app writes to it; a second push finds the data.
    _manifest(work, "one")
    work.commit("volume")
    pushed = work.push(remote)
    assert pushed.returncode == 0, pushed.stderr
    assert f"volume data: created claim {app}-data (16Mi)" in pushed.stderr
    assert _history(kube, apps_namespace, app) == ["one"]
    _manifest(work, "two")
    work.commit("two")
    pushed = work.push(remote)
    assert pushed.returncode == 0, pushed.stderr
    assert _history(kube, apps_namespace, app) == ["one", "two"]

    # 3. Without the volume the claim is kept, and the push says how to delete it.
    _manifest(work, "three", "")
    work.commit("no volume")
    pushed = work.push(remote)
    assert pushed.returncode == 0, pushed.stderr
    assert (
        f"remote:        claim {app}-data is no longer a volume in homeport.toml: unmounted,"
        f" kept with its data; delete it with `kubectl -n {apps_namespace} delete pvc {app}-data`"
    ) in pushed.stderr
    assert _history(kube, apps_namespace, app) == ["three"]

    # 4. Refusals: an unknown app, a wrong confirmation, no terminal and no --yes.
    missing = homeport.api("DELETE", f"/api/apps/{app}x", json={"confirm": f"{app}x"})
    assert missing.status_code == 404, missing.text
    wrong = homeport.api("DELETE", f"/api/apps/{app}", json={"confirm": "blog"})
    assert wrong.status_code == 400
    assert f'send {{"confirm": "{app}"}}' in wrong.json()["error"]
    untyped = _cli(homeport, "apps", "destroy", app)
    assert untyped.returncode == 2
    assert "pass --yes" in untyped.stderr
    assert registry.tags(app) != []

    # 5. Destroyed: nothing is left but the claim, and the output says how to delete it.
    done = _cli(homeport, "apps", "destroy", app, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"-----> Removed {app}: ")
    assert f"kept volume claim {app}-data with its data; delete it with `kubectl -n" in done.stdout
    wait_until(
        lambda: _left(apps_namespace, app) == {"persistentvolumeclaims": [f"{app}-data"]},
        timeout=90,
        what=f"everything of {app} but its claim to be gone",
    )
    assert registry.tags(app) == []
    assert not (homeport.data_dir / "repos" / f"{app}.git").exists()
    assert not (homeport.data_dir / "logs" / app).exists()
    assert homeport.api("GET", f"/api/apps/{app}/jobs").status_code == 404
    assert app not in [a["name"] for a in homeport.api("GET", "/api/apps").json()["apps"]]

    # 6. The name is free: pushed again it is a fresh app that mounts the kept volume.
    _manifest(work, "four")
    work.commit("again")
    pushed = work.push(remote)
    assert pushed.returncode == 0, pushed.stderr
    assert f"-----> {app} v1 is live" in pushed.stderr
    assert _history(kube, apps_namespace, app) == ["one", "two", "four"]

    # 7. Destroyed with its volumes, nothing at all is left.
    gone = homeport.api("DELETE", f"/api/apps/{app}", json={"confirm": app, "volumes": True})
    assert gone.status_code == 200, gone.text
    assert f"persistentvolumeclaims/{app}-data" in gone.json()["deleted"]
    assert gone.json()["kept_volumes"] == []
    wait_until(
        lambda: _left(apps_namespace, app) == {},
        timeout=90,
        what=f"everything of {app} to be gone",
    )
    assert registry.tags(app) == []
