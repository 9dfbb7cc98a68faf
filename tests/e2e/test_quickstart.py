"""The README's path to a live app, run from the README itself on the test cluster.

Every command of the section "From nothing to a live app on k3s" is read from README.md and
run, with the few changes this machine needs (each in REPLACE, with its reason), or is set
aside in NOT_HERE with the reason it cannot run here. A command the README gains or changes
that is in neither table is run as written: the README cannot drift from what works.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import KUBECONFIG, Kube, delete_namespace, service_proxy_get
from tests.support.processes import stop
from tests.support.servers import free_port, wait_healthy
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECTION = re.compile(r"^## From nothing to a live app on k3s$(.*?)^## ", re.M | re.S)
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
# A comment after a command: the README's comments follow two spaces, or one and a `#`.
COMMENT = re.compile(r"\s+#\s.*$")
LOCAL_BASE = '[build]\nargs = { BASE = "homeport-base:busybox" }\n'

# Commands that cannot run on a test machine, and what stands in for them.
NOT_HERE = {
    "docker run -d --name registry --restart=always -p 127.0.0.1:5000:5000"
    " -v homeport-registry:/var/lib/registry -e REGISTRY_STORAGE_DELETE_ENABLED=true"
    " registry:2": "Docker Hub is out of reach: the test registry serves 127.0.0.1:5000",
    "sudo cp deploy/k3s/registries.yaml /etc/rancher/k3s/registries.yaml"
    " && sudo systemctl restart k3s": "no k3s: the test cluster's containerd pulls from the"
    " test registry over HTTP already (tests/cluster)",
    "echo '192.168.1.10 blog.home.lan' | sudo tee -a /etc/hosts": "the test reaches the blog"
    " through the API server's service proxy, not its Ingress host",
    "sudo kubectl -n homeport-apps port-forward svc/api 8080:80": "the api example is not"
    " pushed here (tests/e2e/test_end_to_end.py pushes it)",
    "curl http://127.0.0.1:8080/cgi-bin/status": "as above",
    "python3 -m venv ~/.local/homeport && ~/.local/homeport/bin/pip install .": "the test"
    " venv has homeport installed",
}


def _commands(readme: str) -> list[list[str]]:
    """The section's sh blocks, each a list of its commands as written: continuation lines
    joined, comments and runs of spaces left out."""
    found = SECTION.search(readme)
    assert found, "README.md has no section 'From nothing to a live app on k3s'"
    blocks = []
    for block in BLOCK.findall(found.group(1)):
        lines = (COMMENT.sub("", line) for line in block.replace("\\\n", " ").splitlines())
        blocks.append([re.sub(r"\s+", " ", line).strip() for line in lines if line.strip()])
    return blocks


@pytest.fixture
def namespaces(kube: Kube) -> Iterator[tuple[str, str]]:
    """The apps namespace and homeport's, of this test's own."""
    suffix = uuid.uuid4().hex[:8]
    made = (f"hp-qs-apps-{suffix}", f"hp-qs-home-{suffix}")
    yield made
    for name in made:
        delete_namespace(name)


def test_the_readme_path_leads_to_a_live_app(
    tmp_path: Path, kube: Kube, docker_services: str, namespaces: tuple[str, str]
) -> None:
    """Registry, kubeconfig, homeport up, a push, login, releases and a rollback, as written."""
    apps_ns, home_ns = namespaces
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    askpass = tmp_path / "askpass"
    # The machine's changes to the README's commands, each with its reason.
    replace = {
        # Servers in tests listen on loopback, on a free port.
        "0.0.0.0:8080": f"127.0.0.1:{port}",
        "box.lan:8080": f"127.0.0.1:{port}",
        # The test cluster's admin kubeconfig stands for k3s's; no sudo in tests.
        "sudo KUBECONFIG=/etc/rancher/k3s/k3s.yaml": f"KUBECONFIG={KUBECONFIG}",
        # Namespaces of the test's own, not the shared homeport-apps and homeport.
        "deploy/namespaced-kubeconfig >": f"deploy/namespaced-kubeconfig {apps_ns} {home_ns} >",
        # homeport is installed in the test venv already.
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/homeport": (
            f"{sys.executable} -m homeport"
        ),
        "~/.local/homeport/bin/homeport": f"{sys.executable} -m homeport",
        "cp -r examples/blog": f"cp -r {ROOT}/examples/blog",
        # No terminal to paste the token into: the same token on stdin.
        "homeport login http://127.0.0.1:" + str(port): (
            f"homeport login http://127.0.0.1:{port} --token-stdin"
        ),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOME=str(home), GIT_ASKPASS=str(askpass), GIT_TERMINAL_PROMPT="0")
    # The buildx plugin scripts/buildx installs is in the real home's Docker config.
    env.setdefault("DOCKER_CONFIG", str(Path.home() / ".docker"))
    # Who the commits are by: a newcomer's git knows it already.
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = "Reader", "reader@example.invalid"
    env["HOMEPORT_NAMESPACE"] = apps_ns  # the namespace the kubeconfig above may deploy to
    env.pop("XDG_CONFIG_HOME", None)
    up: subprocess.Popen[bytes] | None = None

    def run(command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        for old, new in replace.items():
            command = command.replace(old, new)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done

    blocks = _commands((ROOT / "README.md").read_text())
    assert len(blocks) == 7, [b[0] for b in blocks]
    stale = set(NOT_HERE) - {command for block in blocks for command in block}
    assert not stale, f"NOT_HERE names commands the README no longer has: {stale}"
    registry, kubeconfig, start, hosts, push, reach, cli = blocks
    try:
        for command in registry + kubeconfig + hosts + reach:
            if command not in NOT_HERE:
                run(command)
        # Step 3: the exports hold for what follows; `homeport up` runs until the end.
        for command in start[:-1]:
            name, _, value = command.removeprefix("export ").partition("=")
            env[name] = os.path.expandvars(value.replace("$HOME", str(home)))
            for old, new in replace.items():
                env[name] = env[name].replace(old, new)
        token_file = home / ".local" / "share" / "homeport" / "token"
        command = start[-1]
        for old, new in replace.items():
            command = command.replace(old, new)
        with (tmp_path / "up.log").open("w") as log:
            up = subprocess.Popen(shlex.split(command), cwd=ROOT, env=env, stdout=log, stderr=log)
        assert wait_healthy(f"http://127.0.0.1:{port}", alive=up), "homeport up did not answer"
        printed = wait_until(
            lambda: (
                "git remote add" in (tmp_path / "up.log").read_text()
                and (tmp_path / "up.log").read_text()
            ),
            timeout=30,
            what="the banner",
        )
        assert f"homeport is up on http://127.0.0.1:{port}" in printed
        assert f"token: {token_file}" in printed
        token = token_file.read_text().strip()
        askpass.write_text(f"#!/bin/sh\necho {shlex.quote(token)}\n")
        askpass.chmod(0o700)

        # Step 5, as written but for the base image: nothing can be pulled here.
        copy, *git = push
        run(copy)
        manifest = home / "blog" / "homeport.toml"
        manifest.write_text(LOCAL_BASE + manifest.read_text())
        pushed = run("cd ~/blog && " + " && ".join(git))
        assert "remote: -----> blog v1 is live" in pushed.stderr
        status, body = service_proxy_get(kube, apps_ns, "blog")
        assert status == 200 and "<html" in body.lower()

        # A second push, so that the README's rollback has a release to go back to.
        run(
            "cd ~/blog && echo '<p>second post</p>' >> www/index.html"
            " && git commit -qam 'second post' && git push -q homelab main"
        )
        # Step 7 from a laptop: only the login gives the CLI its server and token.
        cli_env = {k: v for k, v in env.items() if not k.startswith("HOMEPORT_")}
        env.clear()
        env.update(cli_env)
        commands = [c for c in cli if c not in NOT_HERE]
        login, releases, rollback = commands
        assert "logged in to" in run(login, stdin=token).stdout
        listed = run(releases).stdout
        assert "v2" in listed and "live" in listed
        rolled = run(rollback).stdout
        assert "-----> Rolling back blog to v1" in rolled and "blog v3 is live" in rolled
        assert "second post" not in service_proxy_get(kube, apps_ns, "blog")[1]
    finally:
        if up is not None:
            stop(up, "homeport up")
