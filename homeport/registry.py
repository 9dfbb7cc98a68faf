"""The registry's HTTP API: the only module that speaks it (the Docker engine pushes).

The builder prunes images homeport pushed for releases no longer kept (nothing else: other
tools may push to the same repository); the deployer and the rollback API ask
whether a release's image is still there. Deleting a manifest only unlinks it; the
registry's garbage collector reclaims the layers (`docker-registry garbage-collect
config.yml` with the registry stopped or read-only).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import platform
import re
from urllib.parse import urljoin

import requests

from homeport.errors import StageError, Unavailable

log = logging.getLogger(__name__)

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
# Seconds to wait for the registry on each request.
TIMEOUT = 30
# Tags listed per page, and pages followed: bounds a run against a registry that keeps
# handing out Link headers.
PAGE_SIZE = 1000
MAX_PAGES = 100

_LINK = re.compile(r"<([^>]+)>\s*;\s*rel=\"?next\"?")


class RegistryError(StageError):
    """The registry refused the push or a deletion."""


class RegistryUnreachable(RegistryError, Unavailable):
    """The registry cannot be reached."""

    dependency = "the registry"


def split(image: str) -> tuple[str, str, str]:
    """`127.0.0.1:5000/blog@sha256:ab` -> ("127.0.0.1:5000", "blog", "sha256:ab")."""
    name, at, digest = image.partition("@")
    host, slash, repo = name.partition("/")
    if not at or not slash or not digest.startswith("sha256:"):
        raise ValueError(f"image {image!r} is not REGISTRY/REPO@sha256:DIGEST")
    return host, repo, digest


def has_image(image: str) -> bool:
    """Whether the registry still holds `REGISTRY/REPO@sha256:...`; RegistryError if unsure."""
    host, repo, digest = split(image)
    reg = _Registry(host)
    try:
        return _digest(reg, repo, digest) is not None
    finally:
        reg.session.close()


def _base(registry: str) -> str:
    return registry if "://" in registry else f"http://{registry}"


class _Registry:
    def __init__(self, registry: str) -> None:
        self.name = registry
        self.base = _base(registry)
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        url = path if "://" in path else urljoin(self.base + "/", path.lstrip("/"))
        try:
            return self.session.request(method, url, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]
        except requests.RequestException as exc:
            raise RegistryUnreachable(
                f"the registry {self.name} is unreachable ({exc}); start it or set "
                "HOMEPORT_REGISTRY to a running registry"
            ) from exc

    def refused(self, what: str, response: requests.Response) -> RegistryError:
        body = response.text.strip()[:300]
        hint = "check its log and configuration"
        if response.status_code == 405:
            hint = "enable deletes in its configuration (storage: delete: enabled: true)"
        elif response.status_code in (401, 403):
            hint = "homeport needs a registry without authentication or with access to delete"
        return RegistryError(
            f"the registry {self.name} refused to {what} (HTTP {response.status_code} {body}); "
            + hint
        )


def list_tags(registry: str, app: str) -> list[str]:
    """Tags of repository <app>; an unknown repository has none."""
    return _tags(_Registry(registry), app)


def _tags(reg: _Registry, app: str) -> list[str]:
    tags: list[str] = []
    path: str | None = f"/v2/{app}/tags/list?n={PAGE_SIZE}"
    for _ in range(MAX_PAGES):
        if path is None:
            break
        response = reg.request("GET", path)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise reg.refused(f"list the tags of {app}", response)
        tags.extend(response.json().get("tags") or [])
        match = _LINK.search(response.headers.get("Link", ""))
        path = match.group(1) if match else None
    return tags


def digest_of(registry: str, app: str, reference: str) -> str | None:
    """The manifest digest a tag (or digest) of <app> points to, None if there is none."""
    return _digest(_Registry(registry), app, reference)


def _digest(reg: _Registry, app: str, reference: str) -> str | None:
    response = reg.request(
        "HEAD", f"/v2/{app}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise reg.refused(f"describe {app}:{reference}", response)
    digest = response.headers.get("Docker-Content-Digest")
    if not digest:
        raise RegistryError(
            f"the registry {reg.name} gave no Docker-Content-Digest for {app}:{reference}; "
            "use a registry that implements the Docker Registry HTTP API V2"
        )
    return digest


def prune(registry: str, app: str, removable: set[str], own_tags: set[str]) -> list[str]:
    """Delete the manifests of <app> whose digest is in `removable`; return those deleted.

    `removable` holds digests homeport pushed and no longer keeps, `own_tags` every tag it
    pushed for the app. Deleting a manifest removes every tag pointing to it, so a digest
    that any other tag points to stays: what homeport did not push is not its to delete.
    """
    reg = _Registry(registry)
    try:
        tags_of: dict[str, set[str]] = {}
        for tag in _tags(reg, app):
            digest = _digest(reg, app, tag)
            if digest is not None:
                tags_of.setdefault(digest, set()).add(tag)
        deleted: list[str] = []
        for digest, tags in tags_of.items():
            if digest not in removable or not tags <= own_tags:
                continue
            response = reg.request("DELETE", f"/v2/{app}/manifests/{digest}")
            if response.status_code in (200, 202, 404):
                if response.status_code != 404:
                    deleted.append(digest)
                    log.info("registry %s: deleted %s@%s", registry, app, digest)
                continue
            raise reg.refused(f"delete {app}@{digest}", response)
        return deleted
    finally:
        reg.session.close()


def check_push(registry: str) -> None:
    """Start a blob upload and cancel it: proves the registry takes pushes, stores nothing.

    Raises RegistryUnreachable or RegistryError saying what is wrong.
    """
    reg = _Registry(registry)
    try:
        response = reg.request("POST", "/v2/homeport-doctor/blobs/uploads/")
        if response.status_code != 202:
            raise reg.refused("start an upload (the first step of a push)", response)
        location = response.headers.get("Location")
        if location:
            reg.request("DELETE", location)
    finally:
        reg.session.close()


# The repository of the image `homeport doctor` pushes to see the cluster pull it.
PROBE_REPOSITORY = "homeport-doctor"
# Debian's and Go's names for a machine: an image must name the node's architecture.
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def _blob(reg: _Registry, data: bytes) -> str:
    """Upload one blob to the probe repository; its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = reg.request("POST", f"/v2/{PROBE_REPOSITORY}/blobs/uploads/")
    location = started.headers.get("Location")
    if started.status_code != 202 or not location:
        raise reg.refused("start an upload (the first step of a push)", started)
    sep = "&" if "?" in location else "?"
    done = reg.request(
        "PUT",
        f"{urljoin(reg.base + '/', location)}{sep}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    if done.status_code != 201:
        raise reg.refused("store a blob", done)
    return digest


def push_probe(registry: str) -> str:
    """Push a tiny image of one empty layer, runnable by nobody; `REGISTRY/REPO@sha256:...`.

    What a cluster's pull of it proves is that the nodes reach the registry and speak its
    protocol (plain HTTP or TLS): the one thing a push from homeport cannot show.
    """
    layer = gzip.compress(b"\0" * 1024, mtime=0)  # an empty tar archive
    config = json.dumps(
        {
            "architecture": _ARCHITECTURES.get(platform.machine(), platform.machine()),
            "os": "linux",
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(b"\0" * 1024).hexdigest()],
            },
            "config": {},
        }
    ).encode()
    reg = _Registry(registry)
    try:
        layer_digest = _blob(reg, layer)
        config_digest = _blob(reg, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest,
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        put = reg.request(
            "PUT",
            f"/v2/{PROBE_REPOSITORY}/manifests/probe",
            data=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        if put.status_code != 201:
            raise reg.refused("store a manifest", put)
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    finally:
        reg.session.close()
    return f"{registry}/{PROBE_REPOSITORY}@{digest}"
