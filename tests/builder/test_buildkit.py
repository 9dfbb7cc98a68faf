"""BuildKit features through build_and_push: cache mounts, secrets, targets, contexts, disk."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from homeport.builder import BuildError
from homeport.builder.errors import BuildKitMissing, DiskFull
from homeport.manifest import parse_manifest
from tests.builder.support import (
    BASE_IMAGE,
    Build,
    Recorder,
    processes_running,
    registry_tags,
    said,
)
from tests.conftest import GitApp

pytestmark = pytest.mark.docker

DOCKER_ROOT = "/var/lib/docker"


def _run(image: str, *command: str) -> str:
    return subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/busybox", image, *command],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _docker(*args: str) -> bytes:
    return subprocess.run(["docker", *args], check=True, capture_output=True).stdout


def _cache_step(app: str) -> str:
    """A dependency step that fetches only what its cache mount does not hold yet."""
    return (
        f"RUN --mount=type=cache,target=/cache,id={app} "
        "for dep in $(cat /deps.txt); do "
        'if [ -f /cache/$dep ]; then echo "reused $dep"; '
        'else echo "fetched $dep"; echo $dep > /cache/$dep; fi; done; '
        "/bin/busybox cp -r /cache /installed"
    )


def test_cache_mount_secret_target_and_subdirectory_context(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """A monorepo service built from its directory, to a target stage, with a cache mount and
    a secret; the secret reaches its step and nowhere else (output, argv, history, layers)."""
    secret = "s3cret-" + uuid.uuid4().hex
    web = "services/web/"
    commit = git_app.commit(
        {
            web + "Dockerfile": "\n".join(
                [
                    f"FROM {BASE_IMAGE} AS runtime",
                    "COPY deps.txt /deps.txt",
                    _cache_step(app_name),
                    "RUN --mount=type=secret,id=NPM_TOKEN,required=true "
                    "/bin/busybox sha256sum /run/secrets/NPM_TOKEN "
                    "| /bin/busybox cut -c1-64 > /token.sha256 "
                    '&& echo "token is $(cat /run/secrets/NPM_TOKEN)" && sleep 2',
                    "COPY . /app",
                    f"FROM {BASE_IMAGE} AS debug",
                    "RUN echo never-built",
                ]
            )
            + "\n",
            web + "deps.txt": "alpha beta\n",
            web + "app.txt": "app\n",
            web + "ignored.txt": "ignored\n",
            web + ".dockerignore": "ignored.txt\n",
            "other/outside.txt": "outside\n",
            "homeport.toml": "",
        }
    )
    manifest = parse_manifest(
        '[build]\ncontext = "services/web"\ntarget = "runtime"\nsecrets = ["NPM_TOKEN"]\n'
    )
    emit = Recorder()
    seen_in_argv: list[str] = []
    building = threading.Event()

    def watch_command_lines() -> None:
        while not building.wait(0.05):
            seen_in_argv.extend(processes_running(secret))

    watcher = threading.Thread(target=watch_command_lines)
    watcher.start()
    try:
        image = build(
            git_app.bare,
            app_name,
            commit,
            manifest=manifest,
            secrets={"NPM_TOKEN": secret},
            emit=emit,
        )
    finally:
        building.set()
        watcher.join()

    assert registry_tags(app_name) == [commit[:12]]
    files = set(_run(image.tag, "find", "/app", "-type", "f").split())
    assert files == {"/app/Dockerfile", "/app/.dockerignore", "/app/deps.txt", "/app/app.txt"}
    assert set(_run(image.tag, "ls", "/installed").split()) == {"alpha", "beta"}
    assert (
        _run(image.tag, "cat", "/token.sha256").strip()
        == hashlib.sha256(secret.encode()).hexdigest()
    )
    assert not any("never-built" in line for line in emit.lines)

    said(emit.lines, "token is ***")
    assert secret not in emit.text
    assert seen_in_argv == []
    assert secret.encode() not in _docker("history", "--no-trunc", image.tag)
    assert secret.encode() not in _docker("image", "inspect", image.tag)
    saved = _docker("save", image.tag)
    assert b"token.sha256" in saved  # the layers are in the stream, uncompressed
    assert secret.encode() not in saved


def test_cache_mount_is_reused_when_dependencies_change(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """A changed dependency list re-runs its step, which finds the earlier downloads in the
    cache mount and fetches only the new one."""
    files = {
        "Dockerfile": "\n".join(
            [
                f"FROM {BASE_IMAGE}",
                "COPY deps.txt /deps.txt",
                _cache_step(app_name),
                "COPY app.txt /",
            ]
        )
        + "\n",
        "deps.txt": "alpha beta\n",
        "app.txt": "v1\n",
    }
    first = Recorder()
    build(git_app.bare, app_name, git_app.commit(files), emit=first)
    said(first.lines, "fetched alpha")
    said(first.lines, "fetched beta")

    second = Recorder()
    image = build(
        git_app.bare, app_name, git_app.commit({"deps.txt": "alpha beta gamma\n"}), emit=second
    )
    said(second.lines, "reused alpha")
    said(second.lines, "reused beta")
    said(second.lines, "fetched gamma")
    assert set(_run(image.tag, "ls", "/installed").split()) == {"alpha", "beta", "gamma"}


def test_dockerfile_at_the_repository_root_with_a_subdirectory_context(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """dockerfile = "/docker/web.Dockerfile" is read from the repository root while the
    context is the service's directory."""
    commit = git_app.commit(
        {
            "docker/web.Dockerfile": f"FROM {BASE_IMAGE}\nCOPY page.txt /page.txt\n",
            "services/web/page.txt": "from the context\n",
            "page.txt": "from the root\n",
        }
    )
    manifest = parse_manifest(
        '[build]\ncontext = "services/web"\ndockerfile = "/docker/web.Dockerfile"\n'
    )
    image = build(git_app.bare, app_name, commit, manifest=manifest)
    assert _run(image.tag, "cat", "/page.txt") == "from the context\n"


def test_a_secret_that_is_not_set_fails_naming_it(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """[build] secrets naming an unset config value fails before the build, naming it."""
    commit = git_app.commit({"Dockerfile": f"FROM {BASE_IMAGE}\n"})
    manifest = parse_manifest('[build]\nsecrets = ["NPM_TOKEN", "GH_TOKEN"]\n')
    emit = Recorder()
    with pytest.raises(BuildError) as failure:
        build(
            git_app.bare,
            app_name,
            commit,
            manifest=manifest,
            secrets={"GH_TOKEN": "x" * 20},
            emit=emit,
        )
    assert str(failure.value) == (
        f"app '{app_name}' names NPM_TOKEN in [build] secrets of homeport.toml, but it is not "
        f"set; set it with `homeport config set {app_name} NPM_TOKEN=...` or remove it from "
        "[build] secrets, then push again"
    )
    assert not any(line.startswith("       #") for line in emit.lines)
    assert registry_tags(app_name) == []


@pytest.mark.parametrize(
    ("context", "kind"),
    [("services/api", "no directory"), ("linked", "a symlink"), ("Dockerfile", "no directory")],
)
def test_a_context_that_is_not_a_directory_of_the_repository_fails(
    git_app: GitApp, app_name: str, build: Build, context: str, kind: str
) -> None:
    """A missing context directory, a file, or a symlink (which could lead out of the
    repository) fails the build with the setting to fix."""
    commit = git_app.commit({"Dockerfile": f"FROM {BASE_IMAGE}\n"}, symlinks={"linked": "/etc"})
    manifest = parse_manifest(f'[build]\ncontext = "{context}"\n')
    with pytest.raises(BuildError) as failure:
        build(git_app.bare, app_name, commit, manifest=manifest)
    assert str(failure.value) == (
        f"app '{app_name}' has {kind} at {context} (set by [build] context in homeport.toml); "
        "name a directory of the repository"
    )
    assert registry_tags(app_name) == []


def test_a_full_disk_fails_with_what_is_free_where_and_what_to_delete(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """With less free than HOMEPORT_MIN_FREE_DISK on the engine's data root even after
    pruning, the build is refused before it starts, saying how much is free and where."""
    commit = git_app.commit({"Dockerfile": f"FROM {BASE_IMAGE}\n"})
    # A margin no prune of a test engine's cache can make up.
    needed = shutil.disk_usage(DOCKER_ROOT).free + 20 * 1024**3
    emit = Recorder()
    with pytest.raises(DiskFull) as failure:
        build(git_app.bare, app_name, commit, min_free_disk=needed, emit=emit)
    message = str(failure.value)
    assert message.startswith("only ")
    assert (
        f"is free on {DOCKER_ROOT} (the Docker engine's data root), under HOMEPORT_MIN_FREE_DISK"
        in message
    )
    assert "docker system df" in message and "docker image prune -a" in message
    assert any("pruning the build cache" in line for line in emit.lines)
    assert not any(line.startswith("       #") for line in emit.lines)
    assert registry_tags(app_name) == []


def test_without_the_buildx_plugin_the_build_says_what_to_install(
    git_app: GitApp, app_name: str, build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docker CLI without buildx fails the push naming the packages to install."""
    commit = git_app.commit({"Dockerfile": f"FROM {BASE_IMAGE}\n"})
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    with pytest.raises(BuildKitMissing) as failure:
        build(git_app.bare, app_name, commit)
    message = str(failure.value)
    assert "`docker buildx version` failed" in message
    assert "docker-buildx-plugin" in message and "apt-get install docker-buildx" in message
    assert registry_tags(app_name) == []


def test_build_output_is_one_line_per_step_line(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """Plain progress: no carriage returns or terminal escapes reach the pushing user."""
    commit = git_app.commit({"Dockerfile": f"FROM {BASE_IMAGE}\nRUN echo {app_name}\n"})
    emit = Recorder()
    build(git_app.bare, app_name, commit, emit=emit)
    assert not any("\r" in line or "\x1b" in line for line in emit.lines)
    said(emit.lines, app_name)
