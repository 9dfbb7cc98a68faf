"""Asks the registry whether a release's image still exists, before a rollback relies on it."""

from __future__ import annotations

import urllib.error
import urllib.request

from homeport.deployer.errors import ReleaseUnavailable

# Manifest media types a registry may store an image under (Docker v2 and OCI, single or index).
_ACCEPT = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
TIMEOUT = 10.0


def split(image: str) -> tuple[str, str, str]:
    """`127.0.0.1:5000/blog@sha256:ab` -> ("127.0.0.1:5000", "blog", "sha256:ab")."""
    name, at, digest = image.partition("@")
    host, slash, repo = name.partition("/")
    if not at or not slash or not digest.startswith("sha256:"):
        raise ValueError(f"image {image!r} is not REGISTRY/REPO@sha256:DIGEST")
    return host, repo, digest


def _scheme(host: str) -> str:
    # The homelab registry listens on loopback or the LAN without TLS, as k3s is told to pull it.
    bare = host.rsplit(":", 1)[0]
    return "http" if bare in ("127.0.0.1", "localhost", "::1", "[::1]") else "https"


def require_image(image: str, what: str) -> None:
    """Raise ReleaseUnavailable unless the registry still has the image's manifest."""
    host, repo, digest = split(image)
    url = f"{_scheme(host)}://{host}/v2/{repo}/manifests/{digest}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": _ACCEPT})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT):  # noqa: S310 - URL built above
            return
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise ReleaseUnavailable(
                f"{what} cannot be restored: its image {image} is no longer in the registry"
                " (pruned or deleted); deploy its commit again to rebuild it"
            ) from exc
        raise ReleaseUnavailable(
            f"{what} cannot be restored: the registry at {host} answered {exc.code} for"
            f" {image}; check the registry and try again"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ReleaseUnavailable(
            f"{what} cannot be restored: the registry at {host} is unreachable ({exc});"
            " check that it is running"
        ) from exc
