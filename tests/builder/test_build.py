"""build_and_push against the real Docker engine and the local registry."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from homeport.builder import BuildError, BuiltImage, RegistryError
from homeport.builder.build import INDENT
from homeport.builder.errors import BuildCancelled
from homeport.git.commits import TreeError
from homeport.manifest import parse_manifest
from homeport.registry import MANIFEST_TYPES
from tests.builder.support import (
    REGISTRY,
    Build,
    Recorder,
    dockerfile,
    processes_running,
    registry_tags,
    said,
)
from tests.conftest import GitApp
from tests.support.registry import delete_repository, push_foreign
from tests.support.waiting import wait_until

pytestmark = pytest.mark.docker

SITE = {"www/index.html": "hello\n"}


def _run(image: str, *command: str) -> str:
    result = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/busybox", image, *command],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_image_is_pushed_with_tag_labels_and_digest(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """The image lands in the registry under the commit tag, labelled, with the reported digest."""
    commit = git_app.commit({"Dockerfile": dockerfile("COPY www /www"), **SITE})
    image = build(git_app.bare, app_name, commit)

    assert image.repository == f"{REGISTRY}/{app_name}"
    assert image.tag == f"{REGISTRY}/{app_name}:{commit[:12]}"
    assert image.ref == f"{REGISTRY}/{app_name}@{image.digest}"
    assert registry_tags(app_name) == [commit[:12]]

    url = f"http://{REGISTRY}/v2/{app_name}/manifests"
    head = requests.head(f"{url}/{commit[:12]}", headers={"Accept": MANIFEST_TYPES}, timeout=10)
    assert head.headers["Docker-Content-Digest"] == image.digest
    body = requests.get(f"{url}/{image.digest}", headers={"Accept": MANIFEST_TYPES}, timeout=10)
    assert "sha256:" + hashlib.sha256(body.content).hexdigest() == image.digest

    inspect = subprocess.run(
        ["docker", "image", "inspect", image.tag], check=True, capture_output=True, text=True
    )
    labels = json.loads(inspect.stdout)[0]["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.source"] == app_name


def test_output_is_streamed_in_order_as_it_happens(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """emit gets each line when the build prints it, in order, build lines before push lines."""
    commit = git_app.commit(
        # The app's name keeps the step out of the engine's build cache.
        {
            "Dockerfile": dockerfile(
                f"RUN echo first-line && sleep 2 && echo second-line # {app_name}"
            )
        }
    )
    emit = Recorder()
    image = build(git_app.bare, app_name, commit, emit=emit)

    lines = emit.lines
    assert lines[0] == f"-----> Building {app_name}@{commit[:7]}"
    assert lines[1].startswith("       #")
    first = said(lines, "first-line")
    second = said(lines, "second-line")
    pushing = lines.index(f"-----> Pushing {image.tag}")
    assert first < second < pushing
    assert emit.times[second] - emit.times[first] >= 1.5
    assert any(image.digest in line for line in lines[pushing:])
    assert all(line.startswith(("-----> ", "       ")) for line in lines)


def test_build_args_come_from_the_manifest(git_app: GitApp, app_name: str, build: Build) -> None:
    """[build] args reach the Dockerfile's ARG and [build] dockerfile picks the file."""
    commit = git_app.commit(
        {"docker/app.Dockerfile": dockerfile("ARG VERSION", "RUN echo version=$VERSION > /version")}
    )
    manifest = parse_manifest(
        '[build]\ndockerfile = "docker/app.Dockerfile"\nargs = { VERSION = "7" }'
    )
    image = build(git_app.bare, app_name, commit, manifest=manifest)
    assert _run(image.tag, "cat", "/version") == "version=7\n"


def test_missing_dockerfile_says_what_to_do(git_app: GitApp, app_name: str, build: Build) -> None:
    """A repository without a Dockerfile fails with the house message and pushes nothing."""
    commit = git_app.commit(SITE)
    with pytest.raises(BuildError) as failure:
        build(git_app.bare, "blog", commit)
    assert str(failure.value) == (
        "app 'blog' has no Dockerfile at the repository root; add one or set [build] "
        "dockerfile in homeport.toml"
    )
    manifest = parse_manifest('[build]\ndockerfile = "deploy/Dockerfile"')
    with pytest.raises(BuildError, match="no Dockerfile at deploy/Dockerfile"):
        build(git_app.bare, app_name, commit, manifest=manifest)
    assert registry_tags(app_name) == []


def test_dockerfile_syntax_error(git_app: GitApp, app_name: str, build: Build) -> None:
    """An unknown instruction fails the build naming the problem; nothing is pushed."""
    commit = git_app.commit({"Dockerfile": dockerfile("COPYY www /www"), **SITE})
    with pytest.raises(BuildError) as failure:
        build(git_app.bare, app_name, commit)
    message = str(failure.value)
    assert f"Dockerfile of app '{app_name}' is invalid" in message
    assert "COPYY" in message.upper()
    assert registry_tags(app_name) == []


def test_failing_run_step_names_step_and_exit_code(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """A RUN that exits 3 fails with that step and its exit code; its output was streamed."""
    commit = git_app.commit(
        {"Dockerfile": dockerfile("RUN echo ok", "RUN echo about-to-fail && exit 3", "RUN true")}
    )
    emit = Recorder()
    with pytest.raises(BuildError) as failure:
        build(git_app.bare, app_name, commit, emit=emit)
    assert str(failure.value) == (
        f"[3/4] RUN echo about-to-fail && exit 3 failed with exit code 3 while building "
        f"app '{app_name}'; fix the step and push again"
    )
    assert said(emit.lines, "about-to-fail")
    assert not any(line.startswith("-----> Pushing") for line in emit.lines)
    assert registry_tags(app_name) == []


def test_build_over_the_timeout_is_stopped(git_app: GitApp, app_name: str, build: Build) -> None:
    """A build past its time limit is stopped (its running step killed), nothing pushed."""
    commit = git_app.commit(
        {"Dockerfile": dockerfile(f"RUN echo started && sleep 47 # {app_name}")}
    )
    started = time.monotonic()
    emit = Recorder()
    with pytest.raises(BuildError, match="took longer than its time limit") as failure:
        build(git_app.bare, app_name, commit, timeout=3.0, emit=emit)
    assert said(emit.lines, "started")
    assert time.monotonic() - started < 20
    assert "RUN echo started && sleep 47" in str(failure.value)
    assert registry_tags(app_name) == []
    # The step runs under the engine's BuildKit, not as a container: look for its process.
    wait_until(
        lambda: not processes_running(f"sleep 47 # {app_name}"),
        timeout=15,
        what="the build step's sleep to be killed",
    )


def test_a_build_no_longer_wanted_is_stopped(git_app: GitApp, app_name: str, build: Build) -> None:
    """Once `cancelled` says yes, the running step is killed and nothing is pushed."""
    commit = git_app.commit(
        {"Dockerfile": dockerfile(f"RUN echo started && sleep 53 # {app_name}")}
    )
    emit = Recorder()
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        build(git_app.bare, app_name, commit, emit=emit, cancelled=lambda: "started" in emit.text)
    assert time.monotonic() - started < 30
    assert registry_tags(app_name) == []
    wait_until(
        lambda: not processes_running(f"sleep 53 # {app_name}"),
        timeout=15,
        what="the build step's sleep to be killed",
    )


def test_engine_unreachable(git_app: GitApp, app_name: str, build: Build, tmp_path: Path) -> None:
    """A dead Docker socket fails with a message saying to start the engine."""
    commit = git_app.commit({"Dockerfile": dockerfile()})
    dead = f"unix://{tmp_path}/dead.sock"
    with pytest.raises(BuildError) as failure:
        build(git_app.bare, app_name, commit, docker_host=dead)
    assert f"the Docker engine at {dead} is unreachable" in str(failure.value)
    assert "start it" in str(failure.value)


def test_registry_unreachable(git_app: GitApp, app_name: str, build: Build) -> None:
    """A registry on a closed port fails the push with a RegistryError saying so."""
    commit = git_app.commit({"Dockerfile": dockerfile("COPY www /www"), **SITE})
    registry = f"127.0.0.1:{_closed_port()}"
    try:
        with pytest.raises(RegistryError) as failure:
            build(git_app.bare, app_name, commit, registry=registry)
        assert f"the registry {registry} is unreachable" in str(failure.value)
        assert "HOMEPORT_REGISTRY" in str(failure.value)
    finally:
        subprocess.run(
            ["docker", "rmi", "-f", f"{registry}/{app_name}:{commit[:12]}"], capture_output=True
        )


def test_dockerignore_is_honoured(git_app: GitApp, app_name: str, build: Build) -> None:
    """Ignored files never reach the image; `!` exceptions and `**` work as in Docker."""
    commit = git_app.commit(
        {
            "Dockerfile": dockerfile("COPY . /app"),
            ".dockerignore": "secrets.env\nlogs\n!logs/keep.log\n**/*.tmp\n# comment\n",
            "secrets.env": "TOKEN=x\n",
            "logs/a.log": "a\n",
            "logs/keep.log": "keep\n",
            "src/deep/x.tmp": "tmp\n",
            "src/deep/x.py": "print()\n",
        }
    )
    image = build(git_app.bare, app_name, commit)
    files = set(_run(image.tag, "find", "/app", "-type", "f").split())
    assert files == {
        "/app/Dockerfile",
        "/app/.dockerignore",
        "/app/logs/keep.log",
        "/app/src/deep/x.py",
    }


def test_modes_and_symlinks_are_kept(git_app: GitApp, app_name: str, build: Build) -> None:
    """An executable stays executable, a plain file does not, a symlink stays a symlink."""
    commit = git_app.commit(
        {
            "Dockerfile": dockerfile("COPY . /app", "RUN /app/bin/hello.sh > /hello.out"),
            "bin/hello.sh": "#!/bin/sh\necho hello-from-script\n",
            "data.txt": "data\n",
        },
        executable=["bin/hello.sh"],
        symlinks={"current": "data.txt"},
    )
    image = build(git_app.bare, app_name, commit)
    assert _run(image.tag, "cat", "/hello.out") == "hello-from-script\n"
    listing = _run(
        image.tag, "stat", "-c", "%A %N", "/app/bin/hello.sh", "/app/data.txt", "/app/current"
    )
    assert listing.splitlines() == [
        "-rwxr-xr-x /app/bin/hello.sh",
        "-rw-r--r-- /app/data.txt",
        "lrwxrwxrwx '/app/current' -> 'data.txt'",
    ]


def test_rebuild_reuses_dependency_layers(git_app: GitApp, app_name: str, build: Build) -> None:
    """When only application files change, the dependency steps come from the cache."""
    files = {
        "Dockerfile": dockerfile(
            "COPY deps.txt /deps/",
            "RUN echo installing && cat /deps/deps.txt > /deps/installed",
            "COPY app.txt /app/",
        ),
        "deps.txt": f"dependency list {app_name}\n",
        "app.txt": "version 1\n",
    }
    first = build(git_app.bare, app_name, git_app.commit(files))
    emit = Recorder()
    second = build(git_app.bare, app_name, git_app.commit({"app.txt": "version 2\n"}), emit=emit)

    lines = emit.lines
    run_step = next(i for i, line in enumerate(lines) if "] RUN echo installing" in line)
    copy_step = next(i for i, line in enumerate(lines) if "] COPY app.txt" in line)
    run_number = lines[run_step].split()[0]
    copy_number = lines[copy_step].split()[0]
    assert f"{INDENT}{run_number} CACHED" in lines
    assert not any(line.endswith(" installing") for line in lines)
    assert f"{INDENT}{copy_number} CACHED" not in lines
    assert first.digest != second.digest


def test_two_apps_build_at_once(
    git_app: GitApp, app_name: str, build: Build, tmp_path: Path
) -> None:
    """Two apps built on two threads at the same time both end up in the registry."""
    other = GitApp(tmp_path / "other")
    other_name = app_name + "b"
    jobs = [
        (
            git_app,
            app_name,
            git_app.commit({"Dockerfile": dockerfile("RUN sleep 1 && echo a > /a")}),
        ),
        (other, other_name, other.commit({"Dockerfile": dockerfile("RUN sleep 1 && echo b > /b")})),
    ]
    results: dict[str, BuiltImage | BaseException] = {}

    def work(repo: GitApp, name: str, commit: str) -> None:
        try:
            results[name] = build(repo.bare, name, commit)
        except BaseException as exc:
            results[name] = exc

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        for _repo, name, commit in jobs:
            result = results[name]
            assert isinstance(result, BuiltImage), result
            assert registry_tags(name) == [commit[:12]]
    finally:
        delete_repository(other_name)


class _RefusingRegistry(http.server.BaseHTTPRequestHandler):
    """A registry that answers the version check and denies every upload."""

    def _answer(self) -> None:
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        if self.command == "HEAD":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {"errors": [{"code": "DENIED", "message": "storage quota exceeded", "detail": None}]}
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_registry_refusing_the_push(git_app: GitApp, app_name: str, build: Build) -> None:
    """A registry that denies the upload fails with a RegistryError quoting its reason."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusingRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    registry = f"127.0.0.1:{server.server_address[1]}"
    commit = git_app.commit({"Dockerfile": dockerfile("COPY www /www"), **SITE})
    try:
        with pytest.raises(RegistryError) as failure:
            build(git_app.bare, app_name, commit, registry=registry)
        message = str(failure.value)
        assert f"the registry {registry} refused {registry}/{app_name}:{commit[:12]}" in message
        assert "storage quota exceeded" in message
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        subprocess.run(
            ["docker", "rmi", "-f", f"{registry}/{app_name}:{commit[:12]}"], capture_output=True
        )


def test_dockerignore_matches_the_docker_cli(git_app: GitApp, app_name: str, build: Build) -> None:
    """Our context holds exactly the files the docker CLI sends for the same .dockerignore."""
    patterns = [
        ".git",
        "*.md",
        "!README.md",
        "docs",
        "!docs/keep/**",
        "**/*.tmp",
        "/build",
        "src/*/gen",
        "a?c.txt",
        "[x-z].txt",
        "!src/b/gen/keep.txt",
    ]
    names = [
        "README.md", "NOTES.md", "docs/a.txt", "docs/keep/b.txt", "docs/keep/deep/c.txt",
        "x.tmp", "src/d/e.tmp", "build/out.bin", "src/build/f.txt", "src/a/gen/g.txt",
        "src/b/gen/keep.txt", "src/b/gen/h.txt", "src/a/gen2/i.txt", "abc.txt", "a/c.txt",
        "y.txt", "w.txt", "app.py",
    ]  # fmt: skip
    files = {name: f"{name}\n" for name in names}
    files["Dockerfile"] = dockerfile("COPY . /ctx")
    files[".dockerignore"] = "\n".join(patterns) + "\n"
    commit = git_app.commit(files)

    ours = build(git_app.bare, app_name, commit)
    cli_tag = f"{app_name}-cli:latest"
    subprocess.run(
        ["docker", "build", "-q", "-t", cli_tag, str(git_app.work)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        check=True,
        capture_output=True,
    )
    try:
        theirs = set(_run(cli_tag, "find", "/ctx", "-type", "f").split())
    finally:
        subprocess.run(["docker", "rmi", "-f", cli_tag], capture_output=True)
    assert set(_run(ours.tag, "find", "/ctx", "-type", "f").split()) == theirs
    assert "/ctx/docs/keep/deep/c.txt" in theirs


def test_old_local_images_are_removed(git_app: GitApp, app_name: str, build: Build) -> None:
    """Images homeport pushed and no longer keeps leave the engine; others' tags stay."""
    from homeport.builder.build import remove_old_images

    built = []
    for n in range(3):
        commit = git_app.commit({"Dockerfile": dockerfile(f"RUN echo {n} > /n"), **SITE})
        built.append(build(git_app.bare, app_name, commit))
    # Another tool's tag on one of homeport's images, and an image of its own.
    foreign = [f"{REGISTRY}/{app_name}:elsewhere", f"{REGISTRY}/{app_name}:mine"]
    subprocess.run(["docker", "tag", built[0].tag, foreign[0]], check=True)
    push_foreign(foreign[1])
    own_tags = {image.tag.rpartition(":")[2] for image in built}
    removable = {image.digest for image in built[:2]}
    removed = remove_old_images(REGISTRY, app_name, removable, own_tags)
    assert sorted(removed) == sorted(image.tag for image in built[:2])

    def exists(tag: str) -> bool:
        probe = subprocess.run(["docker", "image", "inspect", tag], capture_output=True)
        return probe.returncode == 0

    assert [exists(image.tag) for image in built] == [False, False, True]
    assert all(exists(tag) for tag in foreign)
    assert remove_old_images(REGISTRY, app_name, removable, own_tags) == []


def test_a_file_over_the_blob_limit_fails_before_the_build(
    git_app: GitApp, app_name: str, build: Build
) -> None:
    """HOMEPORT_MAX_BLOB_BYTES fails the build naming the file; nothing reaches the registry."""
    commit = git_app.commit(
        {"Dockerfile": dockerfile("COPY . /www"), "videos/intro.mp4": bytes(300 * 1024)}
    )
    emitted = Recorder()
    with pytest.raises(TreeError) as caught:
        build(git_app.bare, app_name, commit, max_blob_bytes=256 * 1024, emit=emitted)
    assert str(caught.value).startswith(
        "videos/intro.mp4 is 300 KB, over HOMEPORT_MAX_BLOB_BYTES (256 KB)"
    )
    assert not any(line.startswith("       #") for line in emitted.lines)
    assert registry_tags(app_name) == []
