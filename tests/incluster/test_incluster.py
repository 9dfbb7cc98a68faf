"""homeport installed from deploy/ into the test cluster (tests/incluster/up) deploys apps.

These tests follow deploy/README.md's quickstart on the test cluster: the session fixture runs
tests/incluster/up (steps 1 and 2) and step 3 itself; tests/incluster/README.md says what
stands in for the k3s-only parts.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import redis

from tests.support.cluster import KUBECONFIG, Kube, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.docker, pytest.mark.incluster]

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "incluster"
URL = "http://127.0.0.1:18080"
REDIS_PORT = 16379
# Images pushed by the node's Docker engine to 127.0.0.1:15000 and pulled by the node's
# containerd through the node's own address (tests/cluster/lib.sh, NODE_IP).
REGISTRY = "127.0.0.1:15000"
NODE_REGISTRY_HOST = '"10.88.0.1:15000"'
APPS = "homeport-apps"
SA = "system:serviceaccount:homeport:homeport"
LOCAL_BASE = '[build]\nargs = { BASE = "homeport-base:busybox" }\n'
MIB = 1024 * 1024
LOCK = Path("/var/lib/homeport-test/incluster/.session.lock")


def kubectl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(*args: str, timeout: float = 120) -> str:
    done = kubectl(*args, timeout=timeout)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


class Installed:
    """The installed homeport: its URL and token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def remote(self, app: str) -> str:
        return f"http://git:{self.token}@127.0.0.1:18080/git/{app}.git"

    def api(self, path: str) -> Any:
        response = httpx.get(
            URL + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        return response.json()


def _token() -> str:
    done = subprocess.run(
        [str(HERE / "token")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="session")
def installed(kube: Kube) -> Iterator[Installed]:
    """tests/incluster/up, then the quickstart's step 3: webhook secrets, restart, token.

    tests/incluster/down afterwards, unless HOMEPORT_INCLUSTER_KEEP=1 (quicker reruns).
    The install has fixed names, so one test session at a time uses it (a lock file).
    """
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        wait_until(lambda: _locked(lock), timeout=1800, what=f"the lock {LOCK}", interval=1)
        yield from _install()


def _locked(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _install() -> Iterator[Installed]:
    up = subprocess.run(
        [str(HERE / "up")], capture_output=True, text=True, timeout=1500, check=False
    )
    assert up.returncode == 0, up.stderr[-3000:]
    assert up.stdout.strip().splitlines()[-1] == URL
    created = kubectl(
        *("-n", "homeport", "create", "secret", "generic", "homeport"),
        f"--from-literal=webhook-secret={os.urandom(24).hex()}",
        f"--from-literal=gitlab-token={os.urandom(24).hex()}",
    )
    # A second session on the same install finds the Secret made by the first.
    assert created.returncode == 0 or "already exists" in created.stderr, created.stderr
    ok("-n", "homeport", "rollout", "restart", "deployment/homeport")
    ok("-n", "homeport", "rollout", "status", "deployment/homeport", "--timeout=300s", timeout=320)
    wait_until(_answers, timeout=60, what="homeport to answer after its restart")
    yield Installed(_token())
    if os.environ.get("HOMEPORT_INCLUSTER_KEEP") != "1":
        down = subprocess.run(
            [str(HERE / "down")], capture_output=True, text=True, timeout=300, check=False
        )
        assert down.returncode == 0, down.stderr


def _answers() -> bool:
    try:
        return httpx.get(URL + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _blog(path: Path, app: str) -> WorkTree:
    work = WorkTree(path, dockerfile=None)
    shutil.copytree(ROOT / "examples" / "blog", path, dirs_exist_ok=True)
    manifest = (path / "homeport.toml").read_text().replace("timeout = 60", "timeout = 30")
    (path / "homeport.toml").write_text(LOCAL_BASE + manifest)
    work.write("www/index.html", f"<h1>{app} one</h1>\n")
    work.commit("one")
    return work


def _homeport_pod() -> dict[str, Any]:
    import json

    pods = json.loads(
        ok("-n", "homeport", "get", "pods", "-l", "app.kubernetes.io/name=homeport", "-o", "json")
    )["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, [p["metadata"]["name"] for p in pods]
    pod: dict[str, Any] = running[0]
    return pod


def _restart_homeport() -> None:
    """Delete homeport's pod and wait for its replacement to answer."""
    old = _homeport_pod()["metadata"]["name"]
    ok("-n", "homeport", "delete", "pod", old, "--wait=true", timeout=180)
    ok("-n", "homeport", "rollout", "status", "deployment/homeport", "--timeout=300s", timeout=320)
    wait_until(_answers, timeout=60, what="homeport to answer again")
    assert _homeport_pod()["metadata"]["name"] != old


def _state(hp: Installed, app: str) -> tuple[list[Any], list[Any]]:
    jobs = hp.api(f"/api/apps/{app}/jobs")["jobs"]
    releases = hp.api(f"/api/apps/{app}/releases")["releases"]
    return jobs, releases


def test_push_goes_live_and_the_node_pulls_through_its_own_address(
    installed: Installed, kube: Kube, tmp_path: Path
) -> None:
    """A push builds on the node's engine, and the kubelet pulls it from the node's address."""
    app = f"inblog-{uuid.uuid4().hex[:6]}"
    work = _blog(tmp_path / app, app)
    pushed = work.push(installed.remote(app))
    assert pushed.returncode == 0, pushed.stderr
    assert f"remote: -----> Pushing {REGISTRY}/{app}:" in pushed.stderr
    assert f"remote: -----> {app} v1 is live" in pushed.stderr
    image = ok("-n", APPS, "get", "deployment", app, "-o", "jsonpath={..containers[0].image}")
    assert image.startswith(f"{REGISTRY}/{app}@sha256:")
    status, body = service_proxy_get(kube, APPS, app)
    assert status == 200 and f"{app} one" in body
    # containerd asked for the manifest at the node's address, not at 127.0.0.1.
    log = ok("-n", "homeport", "logs", "deploy/registry", "-c", "registry")
    pulls = [
        line
        for line in log.splitlines()
        if f"/v2/{app}/manifests/sha256:" in line and 'useragent="containerd/' in line
    ]
    assert pulls and all(f"http.request.host={NODE_REGISTRY_HOST}" in p for p in pulls)


def test_deleting_the_pod_loses_nothing_and_an_upgrade_keeps_the_data(
    installed: Installed, kube: Kube, tmp_path: Path
) -> None:
    """Jobs, releases and repositories survive a new pod and a newer image; pushes deploy."""
    app = f"inkeep-{uuid.uuid4().hex[:6]}"
    work = _blog(tmp_path / app, app)
    assert work.push(installed.remote(app)).returncode == 0
    before = _state(installed, app)
    assert len(before[1]) == 1

    _restart_homeport()
    assert _state(installed, app) == before
    assert work.git("ls-remote", installed.remote(app), "main").stdout.split()[0] == work.head()
    work.write("www/index.html", f"<h1>{app} two</h1>\n")
    work.commit("two")
    pushed = work.push(installed.remote(app))
    assert pushed.returncode == 0 and f"{app} v2 is live" in pushed.stderr, pushed.stderr
    before = _state(installed, app)

    # deploy/README.md, "Upgrading": a newer image under a new tag, set in the kustomization.
    _upgrade()
    assert _token() == installed.token
    assert _state(installed, app) == before
    work.write("www/index.html", f"<h1>{app} three</h1>\n")
    work.commit("three")
    pushed = work.push(installed.remote(app))
    assert pushed.returncode == 0 and f"{app} v3 is live" in pushed.stderr, pushed.stderr
    status, body = service_proxy_get(kube, APPS, app)
    assert status == 200 and f"{app} three" in body


def _upgrade() -> None:
    """Build a newer homeport image, push it, name it in a kustomization over deploy/, apply."""
    old = ok("-n", "homeport", "get", "deployment", "homeport", "-o", "jsonpath={..image}")
    tag = f"0.1.1-{uuid.uuid4().hex[:6]}"
    # A newer build of the same code: another label makes another image.
    label = f"org.homeport.test.upgrade={tag}"
    for argv in (
        [
            "docker",
            "build",
            "-q",
            "--label",
            label,
            *_build_args(),
            "-t",
            f"{REGISTRY}/homeport:{tag}",
            str(ROOT),
        ],
        ["docker", "push", "-q", f"{REGISTRY}/homeport:{tag}"],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr
    # On top of the kustomization tests/incluster/up applied, as deploy/README.md's images:.
    upgrade = Path("/var/lib/homeport-test/incluster/upgrade")
    upgrade.mkdir(exist_ok=True)
    (upgrade / "kustomization.yaml").write_text(
        f"resources:\n  - ../kustomize\nimages:\n  - name: {REGISTRY}/homeport\n    newTag: {tag}\n"
    )
    ok("apply", "-k", str(upgrade))
    ok("-n", "homeport", "rollout", "status", "deployment/homeport", "--timeout=300s", timeout=320)
    wait_until(_answers, timeout=60, what="the upgraded homeport to answer")
    now = ok("-n", "homeport", "get", "deployment", "homeport", "-o", "jsonpath={..image}")
    assert now != old and f"homeport:{tag}" in now


def _build_args() -> list[str]:
    """The --build-arg flags tests/incluster/up builds homeport's image with."""
    done = subprocess.run(
        [str(HERE / "images")], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr
    names = {"python": "BASE", "docker-cli": "DOCKER_CLI", "buildx": "BUILDX"}
    args = []
    for line in done.stdout.splitlines():
        name, _, image = line.partition("=")
        if name in names:
            args.append(f"--build-arg={names[name]}={image}")
    return args


def test_redis_refuses_a_client_without_its_password(installed: Installed) -> None:
    """deploy/'s Redis answers only with the password from its generated Secret."""
    import base64
    import json

    secret = json.loads(ok("-n", "homeport", "get", "secret", "redis-auth", "-o", "json"))
    password = base64.b64decode(secret["data"]["password"]).decode()
    anonymous = redis.Redis(host="127.0.0.1", port=REDIS_PORT, socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        anonymous.set("homeport-test-intruder", "1")
    wrong = redis.Redis(host="127.0.0.1", port=REDIS_PORT, password="not-it", socket_timeout=5)
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    assert redis.Redis(host="127.0.0.1", port=REDIS_PORT, password=password).ping()


def _working_set(pod: dict[str, Any]) -> int:
    """The container's memory as the kubelet counts it: usage less inactive file cache."""
    cid = pod["status"]["containerStatuses"][0]["containerID"].rpartition("/")[2]
    qos = pod["status"]["qosClass"].lower()
    uid = pod["metadata"]["uid"]
    cgroup = Path(f"/sys/fs/cgroup/memory/kubepods/{qos}/pod{uid}/{cid}")
    usage = int((cgroup / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    return usage - int(stat.get("total_inactive_file", 0))


def test_probes_and_memory_limit_hold_during_a_200_mb_push(
    installed: Installed, tmp_path: Path
) -> None:
    """homeport has both probes, and a 200 MB push keeps it under its limit without restarts."""
    pod = _homeport_pod()
    spec = pod["spec"]["containers"][0]
    assert spec["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    limit = spec["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    limit_bytes = int(limit[:-2]) * MIB
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]

    app = f"inbig-{uuid.uuid4().hex[:6]}"
    work = _blog(tmp_path / app, app)
    # Incompressible, and kept out of the image so the build stays quick: the push is the load.
    with open(work.path / "data.bin", "wb") as fh:
        for _ in range(200):
            fh.write(os.urandom(MIB))
    work.write(".dockerignore", "data.bin\n")
    work.commit("200 MB")

    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        deadline = time.monotonic() + 600  # bounded, whatever happens to the push
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                peak = max(peak, _working_set(pod))
            except (OSError, ValueError):
                pass  # the container is gone: the restart check below says so
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        pushed = work.push(installed.remote(app))
    finally:
        stop.set()
        sampler.join()
    assert pushed.returncode == 0 and f"{app} v1 is live" in pushed.stderr, pushed.stderr[-2000:]
    after = _homeport_pod()
    assert after["metadata"]["name"] == pod["metadata"]["name"]
    assert after["status"]["containerStatuses"][0]["restartCount"] == restarts
    print(f"homeport working set peak during a 200 MB push: {peak / MIB:.0f} MiB of {limit}")
    assert 0 < peak < limit_bytes


# --- RBAC ---------------------------------------------------------------------------------------


def readme_rbac_table() -> dict[str, set[str]]:
    """deploy/README.md's table of what homeport may do in the apps namespace."""
    text = (ROOT / "deploy" / "README.md").read_text()
    section = text.split("## What homeport may do in the apps namespace", 1)[1]
    section = section.split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not line.startswith("|") or cells[0] in ("resource", "---"):
            continue
        table[cells[0]] = {v.strip() for v in cells[1].split(",")}
    assert table, "deploy/README.md has no RBAC table"
    return table


def can_i_list(user: str, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as a map of resource to verbs (resource rules only)."""
    out = ok("auth", "can-i", "--list", f"--as={user}", "-n", namespace)
    rules: dict[str, set[str]] = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"^(\S+)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+\[([^\]]*)\]\s*$", line)
        if not match or match.group(1).startswith("/"):
            continue  # a non-resource URL (/healthz, /api): granted to every user alike
        resource, names = match.group(1), match.group(3)
        key = resource if names == "[]" else f"{resource} {names}"
        rules.setdefault(key, set()).update(match.group(4).split())
    return rules


def beyond(rules: dict[str, set[str]], baseline: dict[str, set[str]]) -> dict[str, set[str]]:
    extra = {r: verbs - baseline.get(r, set()) for r, verbs in rules.items()}
    return {r: verbs for r, verbs in extra.items() if verbs}


def test_service_account_may_do_exactly_the_readme_rbac_table(installed: Installed) -> None:
    """In the apps namespace the ServiceAccount has the README's table; elsewhere nothing."""
    # What any authenticated user may do (self reviews, discovery), learnt from an account
    # that nothing is bound to.
    nobody = f"system:serviceaccount:homeport:nobody-{uuid.uuid4().hex[:6]}"
    expected = readme_rbac_table()
    got = beyond(can_i_list(SA, APPS), can_i_list(nobody, APPS))
    assert got == expected
    for namespace in ("homeport", "default", "kube-system"):
        assert beyond(can_i_list(SA, namespace), can_i_list(nobody, namespace)) == {}


def test_the_readme_table_parses() -> None:
    """The RBAC table in deploy/README.md names resources and verbs the way can-i lists them."""
    table = readme_rbac_table()
    assert table["deployments.apps"] >= {"get", "patch"}
    assert all(verbs and "" not in verbs for verbs in table.values())
