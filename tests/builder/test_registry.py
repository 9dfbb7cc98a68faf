"""Registry retention against the local registry."""

from __future__ import annotations

import subprocess

import pytest
import requests

from homeport.builder import RegistryError
from homeport.registry import MANIFEST_TYPES, digest_of, list_tags, prune
from tests.builder.support import REGISTRY, Build, dockerfile, registry_tags
from tests.conftest import GitApp
from tests.support.registry import push_foreign

pytestmark = pytest.mark.docker


def _manifest_status(app: str, digest: str) -> int:
    response = requests.head(
        f"http://{REGISTRY}/v2/{app}/manifests/{digest}",
        headers={"Accept": MANIFEST_TYPES},
        timeout=10,
    )
    return response.status_code


def test_prune_deletes_the_removable_digests_and_nothing_else(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """Only manifests in removable are deleted, with every tag pointing to them."""
    images = []
    for version in range(4):
        commit = git_app.commit(
            {"Dockerfile": dockerfile("COPY version.txt /"), "version.txt": f"{version}\n"}
        )
        images.append(build(git_app.bare, app_name, commit))
    digests = [image.digest for image in images]
    assert len(set(digests)) == 4
    own_tags = {image.tag.rsplit(":", 1)[1] for image in images}

    deleted = prune(REGISTRY, app_name, {digests[0], digests[2]}, own_tags)

    assert sorted(deleted) == sorted({digests[0], digests[2]})
    assert sorted(registry_tags(app_name)) == sorted(
        images[i].tag.rsplit(":", 1)[1] for i in (1, 3)
    )
    assert [_manifest_status(app_name, d) for d in digests] == [404, 200, 404, 200]
    assert prune(REGISTRY, app_name, {digests[0], digests[2]}, own_tags) == []


def test_images_pushed_by_others_survive_pruning(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """A tag homeport did not push keeps its image, even on a digest homeport would delete."""
    commit = git_app.commit({"Dockerfile": dockerfile("COPY a.txt /"), "a.txt": "a\n"})
    ours = build(git_app.bare, app_name, commit)
    shared = build(git_app.bare, app_name, git_app.commit({"a.txt": "shared\n"}, message="shared"))
    foreign_digest = push_foreign(f"{REGISTRY}/{app_name}:from-elsewhere")
    # Another tool's tag on an image homeport pushed.
    other = f"{REGISTRY}/{app_name}:stable"
    subprocess.run(["docker", "tag", shared.tag, other], check=True, capture_output=True)
    subprocess.run(["docker", "push", other], check=True, capture_output=True)
    own_tags = {ours.tag.rsplit(":", 1)[1], shared.tag.rsplit(":", 1)[1]}

    # Even told to, prune leaves a digest whose tags are not all homeport's.
    deleted = prune(REGISTRY, app_name, {ours.digest, shared.digest, foreign_digest}, own_tags)

    assert deleted == [ours.digest]
    assert sorted(registry_tags(app_name)) == sorted(
        ["from-elsewhere", "stable", shared.tag.rsplit(":", 1)[1]]
    )


def test_prune_resolves_tags_to_digests(git_app: GitApp, app_name: str, build: Build) -> None:
    """digest_of and list_tags see what the builder pushed; unknown names have nothing."""
    commit = git_app.commit({"Dockerfile": dockerfile()})
    image = build(git_app.bare, app_name, commit)
    assert list_tags(REGISTRY, app_name) == [commit[:12]]
    assert digest_of(REGISTRY, app_name, commit[:12]) == image.digest
    assert digest_of(REGISTRY, app_name, "no-such-tag") is None
    assert list_tags(REGISTRY, app_name + "-missing") == []
    assert prune(REGISTRY, app_name + "-missing", {image.digest}, {commit[:12]}) == []


def test_prune_with_registry_unreachable() -> None:
    """A registry that does not answer gives a RegistryError saying so."""
    with pytest.raises(RegistryError, match=r"the registry 127\.0\.0\.1:9 is unreachable"):
        prune("127.0.0.1:9", "blog", set(), set())
