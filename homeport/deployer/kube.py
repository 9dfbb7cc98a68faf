"""The Kubernetes adapter: the only module that imports `kubernetes`.

The client library loads credentials (kubeconfig or in-cluster) and owns the HTTP pool; requests
are plain JSON dicts, as the objects module builds them. Errors become RolloutError with a message
that names the server, the object and what to check. Transient trouble is retried with backoff:
an API server restarting mid-rollout (connection errors, 5xx, 429), a 409 conflict on apply
(re-applied), and an expired watch (410: re-listed, then watched again).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from homeport.deployer.errors import (
    ApiError,
    ClusterUnreachable,
    Conflict,
    Gone,
    NamespaceMissing,
    missing_namespace,
    status_message,
)
from homeport.deployer.objects import MANAGER
from homeport.deployer.streams import ClosingOn, byte_lines, json_lines
from homeport.settings import Settings

log = logging.getLogger(__name__)


def _library() -> tuple[Any, Any]:
    """The client library's `client` and `config` modules (it is only partly typed).

    Imported on first use: it takes ~0.4 s and ~30 MB, and the receiver and the CLI import
    the deployer's modules without ever opening a connection.
    """
    from kubernetes import client, config

    return client, config


def preload() -> None:
    """Load the client library now (a worker, before it forks its job processes)."""
    _library()


def _transient() -> tuple[type[Exception], ...]:
    """Connection-level failures of the client library's HTTP pool (urllib3, loaded with it)."""
    import urllib3

    return (urllib3.exceptions.HTTPError, OSError)


# How long a transient failure (API server restart, overload) is retried before giving up;
# a k3s server restart takes 10-30 s on a small box.
RETRY_FOR = 45.0
RETRY_FIRST = 0.2
RETRY_MAX = 3.0
REQUEST_TIMEOUT = (5.0, 30.0)
# Server-side length of one watch request; the watch is renewed from its resourceVersion.
WATCH_SECONDS = 60
APPLY_CONFLICT_TRIES = 5

_CORE = "/api/v1"
_PATHS = {
    "namespaces": "/api/v1/namespaces",
    "secrets": _CORE + "/namespaces/{ns}/secrets",
    "services": _CORE + "/namespaces/{ns}/services",
    "pods": _CORE + "/namespaces/{ns}/pods",
    "events": _CORE + "/namespaces/{ns}/events",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "replicasets": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "ingresses": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "cronjobs": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "persistentvolumeclaims": _CORE + "/namespaces/{ns}/persistentvolumeclaims",
}
_KINDS = {
    "Namespace": "namespaces",
    "Secret": "secrets",
    "Service": "services",
    "Deployment": "deployments",
    "Ingress": "ingresses",
    "CronJob": "cronjobs",
    "Job": "jobs",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Pod": "pods",
}
_VERBS = {"GET": "read", "POST": "create", "PATCH": "change", "PUT": "replace", "DELETE": "delete"}


@dataclass
class WatchEvent:
    """A watch event; `SYNC` carries a full (re)list in `items`."""

    type: str
    obj: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)


class Kube:
    """A connection to one cluster, scoped to Settings.namespace."""

    def __init__(self, settings: Settings) -> None:
        self.namespace = settings.namespace
        self._kubeconfig = settings.kubeconfig
        k8s_client, k8s_config = _library()
        cfg = k8s_client.Configuration()
        try:
            if settings.kubeconfig:
                k8s_config.load_kube_config(
                    config_file=settings.kubeconfig, client_configuration=cfg
                )
            else:
                try:
                    k8s_config.load_incluster_config(client_configuration=cfg)
                except k8s_config.ConfigException:
                    # $KUBECONFIG, else ~/.kube/config (the client library's own default).
                    k8s_config.load_kube_config(client_configuration=cfg)
        except (k8s_config.ConfigException, OSError, ValueError) as exc:
            where = settings.kubeconfig or "in-cluster service account or ~/.kube/config"
            raise ClusterUnreachable(
                f"cannot load Kubernetes credentials from {where}: {exc}; set"
                " HOMEPORT_KUBECONFIG to a readable kubeconfig or run homeport inside the cluster",
                0,
            ) from exc
        self.server: str = cfg.host
        self._api: Any = k8s_client.ApiClient(cfg)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Kube:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths -----------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None) -> str:
        """API path of a collection (`deployments`) or one object in the namespace."""
        base = _PATHS[kind].format(ns=quote(self.namespace, safe=""))
        return base + ("/" + quote(name, safe="") if name else "")

    def _unreachable(self, exc: Exception) -> ClusterUnreachable:
        where = f"HOMEPORT_KUBECONFIG={self._kubeconfig}" if self._kubeconfig else "the kubeconfig"
        return ClusterUnreachable(
            f"cannot reach the Kubernetes API server at {self.server} for {RETRY_FOR:.0f} s"
            f" ({type(exc).__name__}: {exc}); check that the cluster is running"
            f" (`kubectl get nodes`) and that {where} points at it",
            0,
        )

    def _error(self, method: str, path: str, status: int, body: bytes) -> ApiError:
        message = status_message(body)
        what = f"{_VERBS.get(method, method)} {path}"
        if status == 401:
            return ApiError(
                f"the Kubernetes API server at {self.server} refused homeport's credentials"
                f" (401 Unauthorized); renew the kubeconfig's user or the service account token",
                status,
            )
        if status == 403:
            return ApiError(
                f"homeport may not {what}: {message}; apply deploy/rbac.yaml to namespace"
                f" '{self.namespace}' or use a kubeconfig with that permission",
                status,
            )
        if status == 409:
            return Conflict(f"conflict on {what}: {message}", status)
        if status == 410:
            return Gone(f"{what}: {message}", status)
        if status == 404 and missing_namespace(body):
            return NamespaceMissing(
                f"namespace '{self.namespace}' does not exist ({what}: {message}); create it"
                f" with `kubectl create namespace {self.namespace}` or set HOMEPORT_NAMESPACE",
                status,
            )
        if status in (400, 422):
            return ApiError(f"the cluster rejected {what}: {message}", status)
        if status >= 500 or status == 429:
            return ClusterUnreachable(
                f"the Kubernetes API server at {self.server} kept answering {status} to {what}"
                f" for {RETRY_FOR:.0f} s: {message}; check the cluster (`kubectl get nodes`)",
                status,
            )
        return ApiError(f"the Kubernetes API server answered {status} to {what}: {message}", status)

    # -- requests --------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float | None] = REQUEST_TIMEOUT,
    ) -> Any:
        """One HTTP call, retried while the server is unreachable or answers 5xx/429."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        m, url, hdrs, data, post = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        deadline = time.monotonic() + RETRY_FOR
        pause = RETRY_FIRST
        while True:
            try:
                resp = self._api.call_api(m, url, hdrs, data, post, _request_timeout=timeout)
            except _transient() as exc:
                if time.monotonic() + pause > deadline:
                    raise self._unreachable(exc) from exc
                log.warning("kubernetes %s %s: %s; retrying in %.1fs", method, path, exc, pause)
            else:
                status = int(resp.status)
                if status < 500 and status != 429:
                    return resp
                if time.monotonic() + pause > deadline:
                    return resp
                resp.read()
                log.warning("kubernetes %s %s: %s; retrying in %.1fs", method, path, status, pause)
            time.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """A JSON request; non-2xx answers raise ApiError (Conflict, Gone) with a clear message."""
        resp = self._send(method, path, query=query, body=body, content_type=content_type)
        raw: bytes = resp.read() or b""
        if not 200 <= resp.status < 300:
            raise self._error(method, path, int(resp.status), raw)
        result = json.loads(raw) if raw else {}
        return result if isinstance(result, dict) else {}

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", self.path(kind, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        kind: str,
        *,
        selector: str | None = None,
        fields: str | None = None,
        cached: bool = False,
    ) -> dict[str, Any]:
        """The objects of a kind in the namespace.

        `cached`: whatever the API server's cache holds, which may be a moment old. A list
        that must be current waits until that cache has caught up with storage, which takes
        tens of milliseconds while a rollout writes.
        """
        query: dict[str, str | int] = {"resourceVersion": "0"} if cached else {}
        if selector:
            query["labelSelector"] = selector
        if fields:
            query["fieldSelector"] = fields
        return self.request("GET", self.path(kind), query=query)

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create the object in the namespace; None when it already exists."""
        kind = _KINDS[obj["kind"]]
        try:
            return self._into_namespace(lambda: self.request("POST", self.path(kind), body=obj))
        except Conflict:
            return None

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply with field manager `homeport`; creates or updates, idempotent."""
        kind = _KINDS[obj["kind"]]
        name = obj["metadata"]["name"]
        path = self.path(kind, name)
        query: dict[str, str | int] = {"fieldManager": MANAGER, "force": "true"}
        for attempt in range(APPLY_CONFLICT_TRIES):
            try:
                return self._into_namespace(
                    lambda: self.request(
                        "PATCH",
                        path,
                        query=query,
                        body=obj,
                        content_type="application/apply-patch+yaml",
                    )
                )
            except Conflict:
                # Someone changed the object between our read and write: apply again.
                if attempt == APPLY_CONFLICT_TRIES - 1:
                    raise
                time.sleep(RETRY_FIRST * (attempt + 1))
        raise AssertionError("unreachable")

    def merge_patch(self, kind: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """JSON merge patch; put metadata.resourceVersion in it for optimistic concurrency."""
        return self.request(
            "PATCH", self.path(kind, name), body=patch, content_type="application/merge-patch+json"
        )

    def delete(self, kind: str, name: str, *, cascade: bool = False) -> bool:
        """Delete the object; False when it was already gone.

        `cascade` deletes what it owns too (a CronJob's Jobs, a Job's pods), whatever the
        kind's default.
        """
        query: dict[str, str | int] = {"propagationPolicy": "Background"} if cascade else {}
        try:
            self.request("DELETE", self.path(kind, name), query=query)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _into_namespace(self, write: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A write into the namespace that creates the namespace when it is missing.

        Asking first would cost every deploy a round trip for what happens once per install.
        """
        try:
            return write()
        except NamespaceMissing:
            self.ensure_namespace()
            return write()

    def ensure_namespace(self) -> None:
        """Create the apps namespace if missing; a Forbidden create is fine if it exists."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        try:
            self.request("POST", _PATHS["namespaces"], body=body)
        except Conflict:
            return
        except ApiError as exc:
            if exc.status != 403:
                raise
            # A namespaced service account may not create (or even read) namespaces; the
            # namespace then has to exist already, and the next namespaced call will say if not.
            log.info("may not create namespace %s; assuming it exists", self.namespace)

    def proxy_get(self, service: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET through the API server's service proxy, without retries: (status, body)."""
        url_path = (self.path("services", f"{service}:80") + "/proxy/" + path.lstrip("/")).replace(
            "%3A", ":"
        )
        m, url, hdrs, data, post = self._api.param_serialize(
            method="GET", resource_path=url_path, header_params={}, auth_settings=["BearerToken"]
        )
        try:
            resp = self._api.call_api(m, url, hdrs, data, post, _request_timeout=timeout)
        except _transient() as exc:
            return 0, str(exc).encode()
        return int(resp.status), resp.read() or b""

    def read_log(self, pod: str, limit_bytes: int) -> str | None:
        """The pod's output so far (its first `limit_bytes`), or None when the pod is gone."""
        path = self.path("pods", pod) + "/log"
        resp = self._send("GET", path, query={"limitBytes": limit_bytes})
        raw: bytes = resp.read() or b""
        if resp.status == 404:
            return None
        if not 200 <= resp.status < 300:
            raise self._error("GET", path, int(resp.status), raw)
        return raw.decode("utf-8", "replace")

    def follow_log(self, pod: str, stop: threading.Event) -> Iterator[str]:
        """The pod's output line by line as it is written, until the container ends or
        `stop` is set; a dropped connection ends it early."""
        path = self.path("pods", pod) + "/log"
        try:
            for line in self.stream(path, stop, query={"follow": "true"}):
                yield line.decode("utf-8", "replace").rstrip("\r\n")
        except ClusterUnreachable as exc:
            if not stop.is_set():
                log.warning("log stream of pod %s ended: %s", pod, exc)

    def stream(
        self, path: str, stop: threading.Event, *, query: Mapping[str, str | int] | None = None
    ) -> Iterator[bytes]:
        """GET a body that arrives over time (a pod's log): its lines as they come.

        Ends when the server ends the body or soon after `stop` is set; no read timeout, since a
        followed log may stay quiet for hours.
        """
        resp = self._send("GET", path, query=query, timeout=(5.0, None))
        if not 200 <= resp.status < 300:
            raise self._error("GET", path, int(resp.status), resp.read() or b"")
        raw = resp.response
        with ClosingOn(stop, raw):
            try:
                yield from byte_lines(raw, stop)
            except _transient() as exc:
                if stop.is_set():
                    return
                raise ClusterUnreachable(
                    f"the stream of {path} from the Kubernetes API server at {self.server}"
                    f" broke ({type(exc).__name__}: {exc})",
                    0,
                ) from exc

    # -- watches ---------------------------------------------------------------------------

    def watch(
        self,
        kind: str,
        stop: threading.Event,
        *,
        selector: str | None = None,
        fields: str | None = None,
    ) -> Iterator[WatchEvent]:
        """List, then watch for changes until `stop` is set.

        Yields a SYNC event with the full list first and after every re-list (a 410 Gone means
        our resourceVersion expired), then ADDED/MODIFIED/DELETED events. Dropped connections
        and server-side timeouts are resumed from the last resourceVersion seen.
        """
        resume: str | None = None
        pause = RETRY_FIRST
        while not stop.is_set():
            if resume is None:
                listed = self.list(kind, selector=selector, fields=fields)
                resume = str(listed.get("metadata", {}).get("resourceVersion") or "")
                yield WatchEvent("SYNC", items=list(listed.get("items") or []))
            query: dict[str, str | int] = {
                "watch": "1",
                "resourceVersion": resume,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": WATCH_SECONDS,
            }
            if selector:
                query["labelSelector"] = selector
            if fields:
                query["fieldSelector"] = fields
            try:
                resp = self._send(
                    "GET", self.path(kind), query=query, timeout=(5.0, WATCH_SECONDS + 15)
                )
                if resp.status == 410:
                    resume = None
                    continue
                if not 200 <= resp.status < 300:
                    raise self._error("GET", self.path(kind), int(resp.status), resp.read())
                raw = resp.response
                with ClosingOn(stop, raw):
                    for event in json_lines(raw):
                        if stop.is_set():
                            return
                        etype = event.get("type", "")
                        obj = event.get("object") or {}
                        if etype == "ERROR":
                            if obj.get("code") == 410:
                                resume = None
                                break
                            raise self._error(
                                "GET",
                                self.path(kind),
                                int(obj.get("code") or 500),
                                json.dumps(obj).encode(),
                            )
                        version = obj.get("metadata", {}).get("resourceVersion")
                        if version:
                            resume = str(version)
                        if etype != "BOOKMARK":
                            yield WatchEvent(etype, obj=obj)
                pause = RETRY_FIRST
            except _transient() as exc:
                if stop.is_set():
                    return
                log.warning("watch on %s interrupted (%s); resuming", kind, exc)
                stop.wait(pause)
                pause = min(pause * 2, RETRY_MAX)
