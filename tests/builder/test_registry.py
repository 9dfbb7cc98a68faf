"""Registry retention against the local registry."""

from __future__ import annotations

import pytest
import requests

from homeport.builder import RegistryError
from homeport.registry import MANIFEST_TYPES, digest_of, list_tags, prune
from tests.builder.support import REGISTRY, Build, dockerfile, registry_tags
from tests.conftest import GitApp

pytestmark = pytest.mark.docker


def _manifest_status(app: str, digest: str) -> int:
    response = requests.head(
        f"http://{REGISTRY}/v2/{app}/manifests/{digest}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    return response.status_code


def test_prune_keeps_the_given_digests_and_deletes_the_rest(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """Only manifests outside keep_digests are deleted, with every tag pointing to them."""
    images = []
    for version in range(4):
        commit = git_app.commit(
            {"Dockerfile": dockerfile("COPY version.txt /"), "version.txt": f"{version}\n"}
        )
        images.append(build(git_app.bare, app_name, commit))
    digests = [image.digest for image in images]
    assert len(set(digests)) == 4
    keep = {digests[1], digests[3]}

    deleted = prune(REGISTRY, app_name, keep)

    assert sorted(deleted) == sorted({digests[0], digests[2]})
    assert sorted(registry_tags(app_name)) == sorted(
        images[i].tag.rsplit(":", 1)[1] for i in (1, 3)
    )
    assert [_manifest_status(app_name, d) for d in digests] == [404, 200, 404, 200]
    assert prune(REGISTRY, app_name, keep) == []


def test_prune_resolves_tags_to_digests(git_app: GitApp, app_name: str, build: Build) -> None:
    """digest_of and list_tags see what the builder pushed; unknown names have nothing."""
    commit = git_app.commit({"Dockerfile": dockerfile()})
    image = build(git_app.bare, app_name, commit)
    assert list_tags(REGISTRY, app_name) == [commit[:12]]
    assert digest_of(REGISTRY, app_name, commit[:12]) == image.digest
    assert digest_of(REGISTRY, app_name, "no-such-tag") is None
    assert list_tags(REGISTRY, app_name + "-missing") == []
    assert prune(REGISTRY, app_name + "-missing", set()) == []


def test_prune_with_registry_unreachable() -> None:
    """A registry that does not answer gives a RegistryError saying so."""
    with pytest.raises(RegistryError, match=r"the registry 127\.0\.0\.1:9 is unreachable"):
        prune("127.0.0.1:9", "blog", set())
