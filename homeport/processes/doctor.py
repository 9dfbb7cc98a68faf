"""`homeport doctor`: checks everything a deploy needs, one line each, with the fix.

Each check asks the real thing (the engine, the registry, the API server) rather than
reading configuration: the Role's rights come from SelfSubjectAccessReviews, not from
what deploy/rbac.yaml says they should be. A check that cannot be made with the rights
homeport has (cluster-wide objects through a namespaced kubeconfig) is skipped, saying so.
"""

from __future__ import annotations

import json
import math
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from homeport import registry
from homeport.builder import buildkit
from homeport.builder.docker_engine import DockerEngine
from homeport.deployer.errors import ApiError
from homeport.deployer.kube import Kube
from homeport.errors import HomeportError
from homeport.records import db
from homeport.settings import Settings, show_size

Status = Literal["ok", "fail", "skip"]
# What the deployer does in the apps namespace (deploy/rbac.yaml): group, resource, verbs.
RIGHTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("apps", "deployments", ("get", "list", "watch", "create", "patch", "update")),
    ("apps", "replicasets", ("get", "list", "watch")),
    ("", "pods", ("get", "list", "watch")),
    ("", "pods/log", ("get",)),
    ("", "services", ("get", "create", "patch")),
    ("networking.k8s.io", "ingresses", ("get", "create", "patch", "delete")),
    ("", "events", ("get", "list", "watch")),
    ("", "secrets", ("create", "get", "patch", "delete")),
)
# Below this, a secret could be guessed offline from one captured signature.
MIN_SECRET_BITS = 80
MIN_DISTINCT_CHARS = 8
CONNECT_TIMEOUT = 3.0
# How long a pod gets to pull the probe image: a first pull over a slow link, not more.
PULL_SECONDS = 60
# Waiting reasons of a container whose image could not be pulled.
PULL_FAILURES = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "RegistryUnavailable"}
)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        head = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}[self.status]
        fix = f"; fix: {self.fix}" if self.fix and self.status == "fail" else ""
        return f"{head}  {self.name:<16} {self.detail}{fix}"


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


def _skip(name: str, detail: str) -> Check:
    return Check(name, "skip", detail)


# -- the Docker engine, BuildKit, the registry, the disk ----------------------------------


def _engine(settings: Settings) -> Iterator[Check]:
    try:
        with DockerEngine() as engine:
            root = engine.local_data_root()
    except HomeportError as exc:
        yield _fail(
            "docker engine",
            str(exc).split("; ")[0],
            "start Docker (`systemctl start docker`) and run homeport as a user in the docker"
            " group, or set DOCKER_HOST",
        )
        yield _skip("free disk", "the Docker engine did not answer")
    else:
        yield _ok("docker engine", f"reachable (data root {root or 'on another machine'})")
        if root is None:
            yield _skip("free disk", "the engine's data root is not on this machine")
        else:
            free = shutil.disk_usage(root).free
            if free >= settings.min_free_disk:
                yield _ok("free disk", f"{show_size(free)} free on {root}")
            else:
                yield _fail(
                    "free disk",
                    f"only {show_size(free)} free on {root}, under HOMEPORT_MIN_FREE_DISK"
                    f" ({show_size(settings.min_free_disk)})",
                    "free space (`docker system df`, `docker builder prune`) or lower"
                    " HOMEPORT_MIN_FREE_DISK",
                )
    try:
        version = buildkit.require()
    except HomeportError as exc:
        yield _fail("buildkit", str(exc).split("; ")[0], buildkit.INSTALL)
    else:
        yield _ok("buildkit", version)


def _start_registry(name: str) -> str:
    """How to start a registry at `name` on this machine (nothing when it is not local)."""
    host, _, port = name.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return ""
    return (
        f" (`docker run -d --name registry --restart=always -p 127.0.0.1:{port}:5000 -v"
        " homeport-registry:/var/lib/registry -e REGISTRY_STORAGE_DELETE_ENABLED=true"
        " registry:2`)"
    )


def _registry(settings: Settings) -> Check:
    try:
        registry.check_push(settings.registry)
    except HomeportError as exc:
        return _fail(
            "registry",
            f"cannot push to {settings.registry}: {str(exc).split('; ')[0]}",
            f"start the registry{_start_registry(settings.registry)} or set HOMEPORT_REGISTRY"
            " to one that takes pushes without authentication",
        )
    return _ok("registry", f"{settings.registry} takes pushes")


# -- the cluster ---------------------------------------------------------------------------


def _reachable(server: str) -> str | None:
    """None when the API server's port accepts a connection; else why not."""
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _review(kube: Any, namespace: str, group: str, resource: str, verb: str) -> bool:
    name, _, sub = resource.partition("/")
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": name}
    if sub:
        attributes["subresource"] = sub
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = kube.request(
        "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body
    )
    return bool((answer.get("status") or {}).get("allowed"))


def _hosts(settings: Settings) -> list[str]:
    """Apps whose live release has an ingress host."""
    with db.connect(settings.data_dir) as conn:
        rows = conn.execute("SELECT app, config FROM releases WHERE status = 'live'").fetchall()
    return [
        row["app"]
        for row in rows
        if ((json.loads(row["config"]).get("spec") or {}).get("ingress_host"))
    ]


def _cluster_wide(kube: Kube, path: str) -> list[dict[str, Any]] | None:
    """Items of a cluster-wide list, or None when homeport may not list them."""
    try:
        items = kube.request("GET", path).get("items") or []
    except ApiError as exc:
        if exc.status == 403:
            return None
        raise
    return [i for i in items if isinstance(i, dict)]


def _cluster(settings: Settings) -> Iterator[Check]:
    where = settings.kubeconfig or "the in-cluster service account or ~/.kube/config"
    try:
        kube = Kube(settings)
    except HomeportError as exc:
        yield _fail(
            "kubeconfig",
            str(exc).split("; ")[0],
            f"point HOMEPORT_KUBECONFIG at a kubeconfig (now {where})",
        )
        return
    with kube:
        problem = _reachable(kube.server)
        if problem is not None:
            yield _fail(
                "kubeconfig",
                f"the API server {kube.server} is unreachable ({problem})",
                "start the cluster, or point HOMEPORT_KUBECONFIG at one that runs",
            )
            return
        try:
            yield from _cluster_checks(settings, kube)
        except HomeportError as exc:
            yield _fail(
                "cluster", str(exc).split("; ")[0], "check the cluster (`kubectl get nodes`)"
            )


def _cluster_checks(settings: Settings, kube: Kube) -> Iterator[Check]:
    ns = settings.namespace
    try:
        version = kube.request("GET", "/version")
    except ApiError as exc:
        yield _fail(
            "kubeconfig",
            f"the API server {kube.server} refused it ({exc.status})",
            "renew the kubeconfig's credentials (deploy/namespaced-kubeconfig)",
        )
        return
    yield _ok("kubeconfig", f"{kube.server}, Kubernetes {version.get('gitVersion', '?')}")
    try:
        found = kube.get("namespaces", ns)
    except ApiError as exc:
        if exc.status != 403:
            raise
        found = {}  # a namespaced kubeconfig may not read namespaces: the rights below tell
    if found is None:
        yield _fail(
            "namespace",
            f"namespace {ns!r} does not exist",
            f"`kubectl create namespace {ns}` and apply deploy/rbac.yaml to it",
        )
        return
    yield _ok("namespace", f"{ns!r} exists" if found else f"{ns!r} (not readable; rights below)")
    missing = [
        f"{verb} {resource}"
        for group, resource, verbs in RIGHTS
        for verb in verbs
        if not _review(kube, ns, group, resource, verb)
    ]
    total = sum(len(v) for _, _, v in RIGHTS)
    if missing:
        yield _fail(
            "rights",
            f"missing {len(missing)} of {total} in {ns!r}: {', '.join(missing)}",
            f"apply deploy/rbac.yaml to namespace {ns!r} (or use deploy/namespaced-kubeconfig)",
        )
    else:
        yield _ok("rights", f"all {total} the deployer needs in {ns!r}")
    if missing:
        yield _skip("pull", "needs the rights above to start a pod")
    else:
        yield _pull(settings, kube, str(version.get("gitVersion", "")))
    classes = _cluster_wide(kube, "/apis/storage.k8s.io/v1/storageclasses")
    default_key = "storageclass.kubernetes.io/is-default-class"
    if classes is None:
        yield _skip("storage class", "the kubeconfig may not list StorageClasses (cluster-wide)")
    else:
        defaults = [
            c["metadata"]["name"]
            for c in classes
            if (c.get("metadata", {}).get("annotations") or {}).get(default_key) == "true"
        ]
        if defaults:
            yield _ok("storage class", f"default {defaults[0]!r}")
        else:
            yield _fail(
                "storage class",
                "no default StorageClass; volumes cannot be provisioned",
                "install a provisioner (k3s ships local-path) and annotate its class"
                f" {default_key}=true",
            )
    hosts = _hosts(settings)
    if not hosts:
        yield _ok("ingress", "no app has a host")
        return
    ingress = _cluster_wide(kube, "/apis/networking.k8s.io/v1/ingressclasses")
    if ingress is None:
        yield _skip("ingress", "the kubeconfig may not list IngressClasses (cluster-wide)")
    elif ingress:
        names = ", ".join(sorted(i["metadata"]["name"] for i in ingress))
        yield _ok("ingress", f"IngressClass {names} for {len(hosts)} app(s) with a host")
    else:
        yield _fail(
            "ingress",
            f"{', '.join(sorted(hosts))} have a host but the cluster has no IngressClass",
            "install an ingress controller (k3s ships Traefik)",
        )


def _pull_outcome(pod: dict[str, Any] | None) -> tuple[bool, str] | None:
    """(pulled, why) once the pod's status tells, else None."""
    for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if status.get("imageID"):
            return True, ""
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            return False, str(waiting.get("message") or waiting["reason"])
    return None


def _registries_yaml(registry: str) -> str:
    # Flow style keeps it on the check's one line, and YAML reads it as the file's block form.
    return f'mirrors: {{"{registry}": {{endpoint: ["http://{registry}"]}}}}'


def _pull(settings: Settings, kube: Kube, version: str) -> Check:
    """A pod pulls a tiny image from the registry: the nodes reach it and speak its protocol."""
    try:
        image = registry.push_probe(settings.registry)
    except HomeportError as exc:
        return _skip("pull", f"nothing to pull: {str(exc).split('; ')[0]}")
    name = f"homeport-doctor-pull-{secrets.token_hex(4)}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "homeport"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            # Nothing runs: the image has no program, and a pull is all this asks of the node.
            "containers": [
                {
                    "name": "pull",
                    "image": image,
                    "imagePullPolicy": "Always",
                    "command": ["/homeport-doctor-pull"],
                }
            ],
        },
    }
    outcome = None
    try:
        kube.create(pod)
    except ApiError as exc:
        return _fail(
            "pull",
            f"cannot start a pod to pull with: {str(exc).split('; ')[0]}",
            f"apply deploy/rbac.yaml to namespace {settings.namespace!r} (pods: create, get,"
            " delete)",
        )
    try:
        deadline = time.monotonic() + PULL_SECONDS
        while outcome is None and time.monotonic() < deadline:
            outcome = _pull_outcome(kube.get("pods", name))
            if outcome is None:
                time.sleep(1)
    finally:
        kube.delete("pods", name)
    if outcome is None:
        return _fail(
            "pull",
            f"a pod did not pull {image} within {PULL_SECONDS}s",
            f"`kubectl -n {settings.namespace} get events` shows why; check the nodes reach"
            f" {settings.registry}",
        )
    pulled, why = outcome
    if pulled:
        return _ok("pull", f"the cluster pulls from {settings.registry}")
    if "k3s" in version:
        fix = (
            f"on every node put {_registries_yaml(settings.registry)} in"
            " /etc/rancher/k3s/registries.yaml (deploy/k3s/registries.yaml), then"
            " `systemctl restart k3s`"
        )
    else:
        fix = (
            f"let the nodes' container runtime pull from {settings.registry} over plain HTTP"
            " (containerd: a hosts.toml with its http:// address), or serve it over TLS"
        )
    return _fail("pull", f"the cluster cannot pull from {settings.registry}: {why}", fix)


# -- secrets -------------------------------------------------------------------------------


def strength(secret: str) -> float:
    """A rough upper bound of the bits of a secret: length x log2(alphabet it draws from)."""
    alphabet = 0
    for chars in ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"):
        if any(c in chars for c in secret):
            alphabet += len(chars)
    alphabet += len({c for c in secret if not c.isalnum()}) * 4
    if len(set(secret)) < MIN_DISTINCT_CHARS:
        return 0.0
    return len(secret) * math.log2(max(alphabet, 2))


def _secret(name: str, variable: str, value: str | None, unset: str) -> Check:
    if not value:
        return _ok(name, unset)
    bits = strength(value)
    if bits < MIN_SECRET_BITS:
        return _fail(
            name,
            f"{variable} is weak (about {bits:.0f} bits)",
            f"set {variable} to e.g. $(python3 -c 'import secrets;"
            " print(secrets.token_urlsafe(32))')",
        )
    return _ok(name, f"{variable} about {min(bits, 256):.0f} bits")


def _secrets(settings: Settings) -> Iterator[Check]:
    token = settings.token or settings.stored_token()
    yield _secret("token", "HOMEPORT_TOKEN", token, "not generated yet (homeport up makes one)")
    yield _secret(
        "webhook secret",
        "HOMEPORT_WEBHOOK_SECRET",
        settings.webhook_secret,
        "unset: webhooks, signed rollbacks and signed events are off",
    )


# -- running them --------------------------------------------------------------------------


def run(settings: Settings) -> list[Check]:
    """Every check, in order; never raises for what it finds."""
    db.init(settings.data_dir)
    checks: list[Check] = []
    for part in (_engine, lambda s: iter([_registry(s)]), _cluster, _secrets):
        try:
            checks.extend(part(settings))
        except HomeportError as exc:  # a check that broke is a failed check, not a crash
            checks.append(_fail("doctor", str(exc), "see the message"))
    return checks


def main(settings: Settings, *, as_json: bool, say: Callable[[str], None]) -> int:
    checks = run(settings)
    failed = [c for c in checks if c.status == "fail"]
    if as_json:
        say(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for check in checks:
            say(check.line())
        say(f"{len(failed)} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0
