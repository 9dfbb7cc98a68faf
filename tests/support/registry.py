"""The local test registry, spoken to directly: what tests push there they clean up here."""

from __future__ import annotations

import requests

from homeport.registry import MANIFEST_TYPES

REGISTRY = "127.0.0.1:5000"


def tags(name: str) -> list[str]:
    """Tags of repository `name` in the local registry; none if it does not exist."""
    response = requests.get(f"http://{REGISTRY}/v2/{name}/tags/list", timeout=10)
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json().get("tags") or [])


def delete_repository(name: str) -> None:
    """Delete every tagged manifest of repository `name`, whoever pushed it."""
    for tag in tags(name):
        head = requests.head(
            f"http://{REGISTRY}/v2/{name}/manifests/{tag}",
            headers={"Accept": MANIFEST_TYPES},
            timeout=10,
        )
        digest = head.headers.get("Docker-Content-Digest")
        if head.status_code == 200 and digest:
            requests.delete(f"http://{REGISTRY}/v2/{name}/manifests/{digest}", timeout=10)


def push_foreign(ref: str) -> str:
    """Build an image of its own (not homeport's), tag it `ref`, push it; return its digest.

    It is built rather than tagged from the base image, so that cleaning up its repository
    by image id never touches an image anything else uses.
    """
    import io
    import tarfile
    import uuid

    import docker

    dockerfile = f"FROM homeport-base:busybox\nLABEL pushed-by=another-tool-{uuid.uuid4().hex}\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    context.seek(0)
    repository, _, tag = ref.rpartition(":")
    engine = docker.from_env()
    try:
        engine.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
        digest = None
        for line in engine.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"push of {ref} failed: {line['error']}")
            digest = line.get("aux", {}).get("Digest", digest)
    finally:
        engine.close()
    if not digest:
        raise RuntimeError(f"push of {ref} reported no digest")
    return str(digest)
