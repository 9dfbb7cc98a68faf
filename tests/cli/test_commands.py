"""The homeport CLI against a running server and the test cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.cli import run_cli as _cli
from tests.support.cluster import Kube
from tests.support.gitwork import WorkTree
from tests.support.servers import TOKEN, Homeport
from tests.support.waiting import wait_until


def test_releases_rollback_config_and_logs(homeport: Homeport, work: WorkTree) -> None:
    """Tables and --json for apps, releases, config and jobs; rollback follows its job."""
    first = work.commit("one", **{"index.html": "one"})
    assert work.push(homeport.remote("blog")).returncode == 0
    work.commit("two", **{"index.html": "two"})
    assert work.push(homeport.remote("blog")).returncode == 0

    apps = _cli(homeport, "apps")
    assert apps.returncode == 0 and "blog" in apps.stdout and "succeeded" in apps.stdout
    table = _cli(homeport, "releases", "blog")
    assert table.stdout.splitlines()[0].split()[:3] == ["VERSION", "STATUS", "COMMIT"]
    assert "v2" in table.stdout and "live" in table.stdout

    rolled = _cli(homeport, "rollback", "blog", "--to", "1")
    assert rolled.returncode == 0, rolled.stderr
    assert "-----> Rolling back blog to v1" in rolled.stdout
    assert "blog v3 is live" in rolled.stdout
    listed = json.loads(_cli(homeport, "releases", "blog", "--json").stdout)["releases"]
    assert (listed[0]["version"], listed[0]["rollback_of"], listed[0]["commit"]) == (3, 1, first)

    again = _cli(homeport, "rollback", "blog", "--to", "3")
    assert again.returncode == 1 and "already live" in again.stderr
    missing = _cli(homeport, "rollback", "blog", "--to", "42")
    assert missing.returncode == 1
    assert missing.stderr == (
        "homeport: app 'blog' has no release v42; its releases are v1 to v3"
        " (see `homeport releases`)\n"
    )

    secret = "s3cr3t-value-123"
    set_ = _cli(homeport, "config", "set", "blog", f"API_KEY={secret}", "MODE=prod")
    assert set_.returncode == 0, set_.stderr
    assert secret not in set_.stdout and "API_KEY" in set_.stdout
    shown = json.loads(_cli(homeport, "config", "show", "blog", "--json").stdout)
    assert set(shown["config"]) == {"API_KEY", "MODE"}
    assert secret not in json.dumps(shown)
    assert _cli(homeport, "config", "unset", "blog", "MODE").returncode == 0
    shown = json.loads(_cli(homeport, "config", "show", "blog", "--json").stdout)
    assert set(shown["config"]) == {"API_KEY"}
    bad = _cli(homeport, "config", "set", "blog", "A=1", "NOEQUALS")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr and bad.stderr.endswith("\n")
    assert _cli(homeport, "rollback").returncode == 2  # argparse's usage error

    # The newest job is the config release of `config unset` (set made v4).
    newest = json.loads(_cli(homeport, "jobs", "blog", "--json").stdout)["jobs"][0]["id"]
    shown = _cli(homeport, "jobs", "blog", newest)
    assert "blog v5 is live" in shown.stdout and shown.stdout.endswith("\n")
    followed = _cli(homeport, "jobs", "blog", "-f")
    assert followed.returncode == 0 and followed.stdout == shown.stdout

    # A reader that went away (`homeport jobs blog JOB | head`) ends the CLI quietly: its
    # stdout is a pipe whose read end is already closed, so every write fails.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL=homeport.url, HOMEPORT_TOKEN=TOKEN)
    try:
        piped = subprocess.run(
            [sys.executable, "-m", "homeport", "jobs", "blog", newest],
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (piped.returncode, piped.stderr) == (0, "")


def test_cli_without_a_server_says_where_it_looked(tmp_path: object) -> None:
    """An unreachable server is one clear line, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEPORT_")}
    env.update(HOMEPORT_URL="http://127.0.0.1:9", HOMEPORT_TOKEN="x" * 16)
    result = subprocess.run(
        [sys.executable, "-m", "homeport", "apps"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("homeport: cannot reach homeport at http://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_source_shows_sets_and_removes_the_binding(receiver: Homeport) -> None:
    """`homeport source` shows, `source set` binds, `source rm` unbinds; bad input is one line."""
    receiver.api("PUT", "/api/apps/blog/source", json={"repository": "github:me/blog"})
    shown = _cli(receiver, "source", "blog")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "blog deploys from webhooks of github:me/blog\n"
    moved = _cli(receiver, "source", "set", "blog", "gitlab:group/blog", "--json")
    assert (moved.returncode, moved.stderr) == (0, "")
    assert json.loads(moved.stdout) == {"app": "blog", "repository": "gitlab:group/blog"}
    assert receiver.api("GET", "/api/apps/blog/source").json()["repository"] == "gitlab:group/blog"
    cleared = _cli(receiver, "source", "rm", "blog")
    assert (cleared.returncode, cleared.stderr) == (0, "")
    assert "blog is not bound; the next webhook that deploys it binds it" in cleared.stdout
    bad = _cli(receiver, "source", "set", "blog", "me/blog")
    assert bad.returncode == 1
    assert bad.stderr.startswith("homeport: repository 'me/blog' is not PROVIDER:OWNER/NAME")
    for wrong in (["set", "blog"], ["blog", "github:me/blog"], ["rm", "blog", "extra"]):
        refused = _cli(receiver, "source", *wrong)
        assert refused.returncode == 2, wrong
        assert refused.stderr.startswith("homeport: source takes APP, set APP REPOSITORY"), wrong


def test_source_set_and_clear_flags_still_work_with_a_hint(receiver: Homeport) -> None:
    """The old `source APP --set R` and `--clear` work and name the new spelling on stderr."""
    moved = _cli(receiver, "source", "blog", "--set", "github:me/blog")
    assert moved.returncode == 0
    assert moved.stdout == "blog deploys from webhooks of github:me/blog\n"
    assert moved.stderr == (
        "homeport: --set is an old spelling; use: homeport source set blog github:me/blog\n"
    )
    cleared = _cli(receiver, "source", "blog", "--clear")
    assert cleared.returncode == 0 and "blog is not bound" in cleared.stdout
    assert cleared.stderr == "homeport: --clear is an old spelling; use: homeport source rm blog\n"
    both = _cli(receiver, "source", "blog", "--set", "github:me/blog", "--clear")
    assert both.returncode == 2
    twice = _cli(receiver, "source", "rm", "blog", "--clear")
    assert (twice.returncode, twice.stderr) == (
        2,
        "homeport: give the change once, e.g. homeport source rm blog\n",
    )


def test_jobs_follow_exits_1_for_a_failed_deploy(homeport: Homeport, work: WorkTree) -> None:
    """`jobs APP -f` follows a deploy as it fails and exits 1; `run --detach --json` is JSON."""
    work.commit("one", **{"index.html": "one"})
    assert work.push(homeport.remote("blog")).returncode == 0
    started = _cli(homeport, "run", "blog", "--detach", "--json", "--", "ls", "-la", "/www")
    assert started.returncode == 0, started.stderr
    run = json.loads(started.stdout)
    assert run["command"] == ["ls", "-la", "/www"]
    assert run["log"] == f"/api/apps/blog/runs/{run['id']}/log"

    (live,) = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    work.write("Dockerfile", "FROM homeport-base:busybox\nRUN echo the build breaks && exit 3\n")
    work.commit("broken")
    with work.push_async(homeport.remote("blog")) as push:

        def newest() -> str | None:
            listed = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
            found: str = listed[0]["id"]
            return found if found != live["id"] else None

        job = wait_until(newest, timeout=60, what="the broken push's job")
        followed = _cli(homeport, "jobs", "blog", "-f")
        push.wait(timeout=60)
    assert followed.returncode == 1, followed.stdout
    assert "the build breaks" in followed.stdout
    assert homeport.api("GET", f"/api/apps/blog/jobs/{job}").json()["status"] == "failed"
    again = _cli(homeport, "jobs", "blog", job, "-f")
    assert (again.returncode, again.stdout) == (1, followed.stdout)
    assert _cli(homeport, "jobs", "blog", live["id"], "-f").returncode == 0


def test_config_set_reads_a_value_from_stdin_off_the_command_line(
    homeport: Homeport, kube: Kube, apps_namespace: str
) -> None:
    """`config set APP KEY` takes the value from stdin: it never shows in `ps` or history."""
    import base64

    value = "from-stdin-0123456789"
    stored = _cli(homeport, "config", "set", "blog", "API_KEY", "--no-deploy", stdin=value + "\n")
    assert stored.returncode == 0, stored.stderr
    assert value not in stored.stdout + stored.stderr
    secret = kube.core.read_namespaced_secret("blog-config", apps_namespace)
    assert base64.b64decode(secret.data["API_KEY"]).decode() == value
    empty = _cli(homeport, "config", "set", "blog", "OTHER", stdin="")
    assert empty.returncode == 2 and "no value for OTHER on stdin" in empty.stderr
