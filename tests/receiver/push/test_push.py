"""git push against a real receiver and real workers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport
from tests.support.waiting import wait_until


def _remote_head(hp: Homeport, app: str, ref: str = "refs/heads/main") -> str | None:
    from dulwich.repo import Repo

    path = hp.data_dir / "repos" / f"{app}.git"
    if not path.exists():
        return None
    repo = Repo(str(path))
    try:
        return repo.refs[ref.encode()].decode()
    except KeyError:
        return None
    finally:
        repo.close()


def test_first_push_creates_the_app_and_deploys(homeport: Homeport, work: WorkTree) -> None:
    """The first push creates the app, streams the job's output and moves main."""
    commit = work.commit("first", **{"index.html": "hello"})
    result = work.push(homeport.remote("blog"))
    assert result.returncode == 0, result.stderr
    assert "remote: -----> Queued deploy" in result.stderr
    assert f"remote: -----> Building blog@{commit[:7]}" in result.stderr
    assert _remote_head(homeport, "blog") == commit
    apps = homeport.api("GET", "/api/apps").json()["apps"]
    assert [a["name"] for a in apps] == ["blog"]
    jobs = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    assert [(j["commit"], j["status"], j["source"]) for j in jobs] == [
        (commit, "succeeded", "push")
    ]
    assert jobs[0]["image"].startswith("127.0.0.1:5000/blog@sha256:")


def test_clone_of_the_remote_works(homeport: Homeport, work: WorkTree, tmp_path: Path) -> None:
    """upload-pack is served too: the same URL clones."""
    commit = work.commit("first", **{"a.txt": "a"})
    pushed = work.push(homeport.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    clone = subprocess.run(
        ["git", "clone", "-q", homeport.remote("blog"), str(tmp_path / "clone")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert clone.returncode == 0, clone.stderr
    assert (tmp_path / "clone" / "a.txt").read_text() == "a"
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path / "clone", capture_output=True, text=True
    )
    assert head.stdout.strip() == commit


def test_wrong_token_is_refused_and_nothing_is_written(homeport: Homeport, work: WorkTree) -> None:
    """A push with a wrong token fails with 401 and creates nothing."""
    work.commit("first", **{"a.txt": "a"})
    result = work.push(homeport.remote("blog", token="wrong"))
    assert result.returncode != 0
    assert "401" in result.stderr or "Authentication failed" in result.stderr
    assert not (homeport.data_dir / "repos" / "blog.git").exists()
    no_auth = httpx.get(homeport.url + "/git/blog.git/info/refs?service=git-receive-pack")
    assert no_auth.status_code == 401


def test_bad_app_names_are_refused_and_nothing_is_written(
    homeport: Homeport, work: WorkTree
) -> None:
    """Upper case, dots and names over 40 characters are refused with a clear message."""
    work.commit("first", **{"a.txt": "a"})
    for name in ("Blog", "a" * 41, "my.app", "-blog"):
        result = work.push(homeport.remote(name))
        assert result.returncode != 0, name
        assert "is not allowed" in result.stderr, result.stderr
    repos = homeport.data_dir / "repos"
    assert not repos.exists() or list(repos.iterdir()) == []


def test_deleting_the_deploy_branch_is_refused(homeport: Homeport, work: WorkTree) -> None:
    """A push deleting main is rejected with the reason and main stays."""
    commit = work.commit("first", **{"a.txt": "a"})
    pushed = work.push(homeport.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    result = work.push(homeport.remote("blog"), ":main")
    assert result.returncode != 0
    assert "deleting 'main' is not allowed" in result.stderr
    assert _remote_head(homeport, "blog") == commit


def test_other_branches_are_stored_not_deployed(homeport: Homeport, work: WorkTree) -> None:
    """A push to another branch is stored and says it does not deploy."""
    work.commit("first", **{"a.txt": "a"})
    work.git("checkout", "-q", "-b", "feature")
    commit = work.commit("feature", **{"b.txt": "b"})
    result = work.push(homeport.remote("blog"), "feature")
    assert result.returncode == 0, result.stderr
    assert "remote: -----> stored feature; only pushes to 'main' deploy" in result.stderr
    assert _remote_head(homeport, "blog", "refs/heads/feature") == commit
    assert homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"] == []


def test_a_large_push_is_received(homeport: Homeport, work: WorkTree) -> None:
    """A push over git's 1 MiB postBuffer (sent chunked) arrives whole."""
    import os

    work.write("blob.bin", os.urandom(5 * 1024 * 1024))
    commit = work.commit("big")
    result = work.push(homeport.remote("blog"))
    assert result.returncode == 0, result.stderr
    assert _remote_head(homeport, "blog") == commit


def test_a_push_over_the_size_cap_is_refused(tmp_path: Path, redis_url: str) -> None:
    """HOMEPORT_MAX_PUSH_BYTES bounds the pack a push may send; main does not move."""
    import os

    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_MAX_PUSH_BYTES": "64k"},
    ).start(workers=1)
    try:
        work = WorkTree(tmp_path / "work")
        work.write("blob.bin", os.urandom(512 * 1024))
        work.commit("big")
        result = work.push(hp.remote("blog"))
        assert result.returncode != 0
        assert _remote_head(hp, "blog") is None
    finally:
        hp.stop()


def test_a_burst_of_waiting_pushes_is_queued_in_full(tmp_path: Path, redis_url: str) -> None:
    """30 pushes to 30 apps, all waiting for their deploys, are all queued; git still answers."""
    hp = Homeport(data_dir=tmp_path / "data", redis_url=redis_url).start(workers=0)
    names = [f"burst-{i}" for i in range(30)]
    pushes: list[subprocess.Popen[str]] = []
    try:
        for name in names:
            # No Dockerfile: once workers run, each job fails at once, before any build.
            work = WorkTree(tmp_path / name, dockerfile=None)
            work.commit(name, **{"index.html": name})
            pushes.append(
                subprocess.Popen(
                    ["git", "push", hp.remote(name), "main"],
                    cwd=work.path,
                    env=work.env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,  # so that cleanup reaches git's remote helper
                )
            )
        for name in names:
            _wait_jobs(hp, name, 1)
        listed = WorkTree(tmp_path / names[0]).git("ls-remote", hp.remote(names[0]), timeout=10)
        assert listed.returncode == 0
        assert all(push.poll() is None for push in pushes)
        hp.start_workers(2)
        for push in pushes:
            _, err = push.communicate(timeout=120)
            assert push.returncode != 0 and "has no Dockerfile" in err
    finally:
        for push in pushes:
            if push.poll() is None:
                os.killpg(push.pid, signal.SIGKILL)
                push.communicate(timeout=30)
        hp.stop()


def test_a_newer_push_supersedes_a_queued_one(homeport: Homeport, work: WorkTree) -> None:
    """With the app's queue waiting, the later commit deploys and the earlier is superseded."""
    homeport.stop_workers()
    remote = homeport.remote("blog")
    first = work.commit("one", **{"a.txt": "1"})
    push_one = work.push_async(remote, f"{first}:refs/heads/main")
    _wait_jobs(homeport, "blog", 1)
    second = work.commit("two", **{"a.txt": "2"})
    push_two = work.push_async(remote, f"+{second}:refs/heads/main")
    _wait_jobs(homeport, "blog", 2)
    homeport.start_workers(2)
    _, err_one = push_one.communicate(timeout=60)
    _, err_two = push_two.communicate(timeout=60)
    assert push_two.returncode == 0, err_two
    assert push_one.returncode != 0
    assert f"deploy superseded: superseded by {second[:12]}" in err_one
    jobs = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    assert [(j["commit"], j["status"]) for j in jobs] == [
        (second, "succeeded"),
        (first, "superseded"),
    ]
    assert _remote_head(homeport, "blog") == second


def _wait_jobs(hp: Homeport, app: str, count: int) -> None:
    def enough() -> bool:
        response = hp.api("GET", f"/api/apps/{app}/jobs")
        return response.status_code == 200 and len(response.json()["jobs"]) >= count

    wait_until(enough, timeout=30, what=f"{count} jobs of {app}", interval=0.05)


SLOW_DOCKERFILE = """FROM homeport-base:busybox
RUN echo step-one-{nonce}
RUN sleep 2
RUN echo step-three-{nonce}
COPY . /www
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


def test_failed_deploy_rejects_the_push_and_main_stays(homeport: Homeport, work: WorkTree) -> None:
    """A failing RUN step: the push exits non-zero with the reason; main keeps the live commit."""
    good = work.commit("good", **{"index.html": "v1"})
    pushed = work.push(homeport.remote("blog"))
    assert pushed.returncode == 0, pushed.stderr
    bad = work.commit("bad", Dockerfile="FROM homeport-base:busybox\nRUN exit 3\n")
    result = work.push(homeport.remote("blog"))
    assert result.returncode != 0
    assert "! [remote rejected] main -> main (deploy failed:" in result.stderr
    assert "exit" in result.stderr and "3" in result.stderr
    assert _remote_head(homeport, "blog") == good
    jobs = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    assert (jobs[0]["commit"], jobs[0]["status"]) == (bad, "failed")


def test_broken_manifest_fails_before_any_build(homeport: Homeport, work: WorkTree) -> None:
    """A bad homeport.toml names the key and fails the job before building."""
    work.commit("bad", **{"homeport.toml": "[run]\nport = 99999\n"})
    result = work.push(homeport.remote("blog"))
    assert result.returncode != 0
    assert "run.port" in result.stderr
    assert "Building" not in result.stderr
    assert _remote_head(homeport, "blog") is None


def test_output_streams_while_the_job_runs(homeport: Homeport, work: WorkTree) -> None:
    """Build lines reach the pushing client as they happen, not at the end."""
    import uuid

    nonce = uuid.uuid4().hex[:8]
    work.commit("slow", Dockerfile=SLOW_DOCKERFILE.format(nonce=nonce))
    seen: dict[str, float] = {}
    start = time.monotonic()
    with work.push_async(homeport.remote("blog")) as push:
        assert push.stderr is not None
        for line in push.stderr:
            for marker in (f"step-one-{nonce}", f"step-three-{nonce}"):
                if marker in line and marker not in seen:
                    seen[marker] = time.monotonic() - start
    assert push.returncode == 0
    assert seen[f"step-three-{nonce}"] - seen[f"step-one-{nonce}"] >= 1.5


def test_two_apps_deploy_in_parallel(homeport: Homeport, tmp_path: Path) -> None:
    """Pushes to two apps run at the same time on two workers."""
    import uuid

    pushes = []
    for app in ("alpha", "beta"):
        work = WorkTree(tmp_path / app)
        work.commit("slow", Dockerfile=SLOW_DOCKERFILE.format(nonce=uuid.uuid4().hex[:8]))
        pushes.append(work.push_async(homeport.remote(app)))
    for push in pushes:
        _, err = push.communicate(timeout=120)
        assert push.returncode == 0, err
    a = homeport.api("GET", "/api/apps/alpha/jobs").json()["jobs"][0]
    b = homeport.api("GET", "/api/apps/beta/jobs").json()["jobs"][0]
    assert a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"]


def test_a_push_during_the_build_supersedes_it_before_its_rollout(
    homeport: Homeport, work: WorkTree
) -> None:
    """A push arriving while the app builds wins: the build stops, nothing of it is pushed."""
    import uuid

    nonce = uuid.uuid4().hex[:8]
    dockerfile = SLOW_DOCKERFILE.format(nonce=nonce).replace("sleep 2", "sleep 45")
    first = work.commit("one", Dockerfile=dockerfile, **{"index.html": "one"})
    remote = homeport.remote("blog")
    push_one = work.push_async(remote, f"{first}:refs/heads/main")
    assert push_one.stderr is not None
    err_one = []
    for line in push_one.stderr:
        err_one.append(line)
        if f"step-one-{nonce}" in line:
            break  # the build would sleep 45 s from here
    second = work.commit("two", **{"index.html": "two"})
    push_two = work.push_async(remote, f"+{second}:refs/heads/main")
    _wait_jobs(homeport, "blog", 2)
    _, rest = push_one.communicate(timeout=120)
    _, err_two = push_two.communicate(timeout=120)
    err = "".join(err_one) + (rest or "")
    assert push_two.returncode == 0, err_two
    assert push_one.returncode != 0
    assert f"superseded by a newer push ({second[:12]}); not rolled out" in err
    assert f"deploy superseded: superseded by {second[:12]}" in err
    assert "-----> Pushing" not in err  # stopped mid-build, not built to the end
    jobs = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"]
    assert [(j["commit"], j["status"]) for j in jobs] == [
        (second, "succeeded"),
        (first, "superseded"),
    ]
    listed = homeport.api("GET", "/api/apps/blog/releases").json()["releases"]
    assert [(r["commit"], r["status"]) for r in listed] == [(second, "live")]
    assert _remote_head(homeport, "blog") == second


def test_client_disconnect_leaves_the_deploy_running(homeport: Homeport, work: WorkTree) -> None:
    """If the pushing client goes away, the job finishes and the worker moves main."""
    import uuid

    commit = work.commit("slow", Dockerfile=SLOW_DOCKERFILE.format(nonce=uuid.uuid4().hex[:8]))
    with work.push_async(homeport.remote("blog")) as push:
        assert push.stderr is not None
        for line in push.stderr:
            if "Queued deploy" in line:
                break
        push.kill()
    _wait_jobs(homeport, "blog", 1)
    job = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
    assert homeport.wait_job("blog", job["id"])["status"] == "succeeded"
    assert _remote_head(homeport, "blog") == commit


@pytest.fixture
def small_blobs(tmp_path: Path, redis_url: str) -> Iterator[Homeport]:
    """A receiver with a 64 KB file limit and no workers: nothing may get as far as a job."""
    hp = Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_MAX_BLOB_BYTES": "64k"},
    ).start(workers=0)
    yield hp
    hp.stop()


def test_a_file_over_the_blob_limit_is_refused_at_push_time(
    small_blobs: Homeport, work: WorkTree
) -> None:
    """The deploy branch refuses a big file with the reason before any job is queued."""
    work.write("videos/intro.mp4", bytes(100 * 1024))
    work.commit("video")
    app = f"v{uuid.uuid4().hex[:8]}"
    result = work.push(small_blobs.remote(app))
    reason = (
        "videos/intro.mp4 is 100 KB, over HOMEPORT_MAX_BLOB_BYTES (64 KB); remove it from "
        "the commit or raise the limit"
    )
    assert result.returncode != 0
    assert f"! [remote rejected] main -> main ({reason})" in result.stderr
    assert "remote: -----> refused" in result.stderr
    assert _remote_head(small_blobs, app) is None
    assert small_blobs.api("GET", f"/api/apps/{app}/jobs").json()["jobs"] == []


def test_other_branches_store_big_files(small_blobs: Homeport, work: WorkTree) -> None:
    """Only the deploy branch is built, so only it is held to the file limit."""
    work.write("videos/intro.mp4", bytes(100 * 1024))
    commit = work.commit("video")
    app = f"v{uuid.uuid4().hex[:8]}"
    result = work.push(small_blobs.remote(app), "main:feature")
    assert result.returncode == 0, result.stderr
    assert _remote_head(small_blobs, app, "refs/heads/feature") == commit


def test_a_tree_nested_too_deep_is_refused_at_push_time(
    small_blobs: Homeport, work: WorkTree
) -> None:
    """A commit nested deeper than the limit is rejected naming it, not crashing a worker."""
    work.write("/".join(["d"] * 201) + "/leaf.txt", "deep")
    work.commit("deep")
    app = f"n{uuid.uuid4().hex[:8]}"
    result = work.push(small_blobs.remote(app))
    assert result.returncode != 0
    assert "! [remote rejected] main -> main (the commit's directories are nested deeper " in (
        result.stderr
    )
    assert "than 200 levels" in result.stderr
    assert _remote_head(small_blobs, app) is None


def test_a_push_waits_no_longer_than_the_job_timeout(
    start_receiver: Callable[..., Homeport], work: WorkTree
) -> None:
    """With no worker to run its deploy, a push ends after the job timeout plus a margin."""
    receiver = start_receiver(HOMEPORT_JOB_TIMEOUT="1")
    work.commit("first", **{"a.txt": "a"})
    start = time.monotonic()
    result = work.push(receiver.remote("blog"))
    assert 6 <= time.monotonic() - start < 30
    assert result.returncode != 0
    assert "remote: -----> stopped waiting after 6s (HOMEPORT_JOB_TIMEOUT" in result.stderr
    assert _remote_head(receiver, "blog") is None  # main moves only when a deploy went live
    job = receiver.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
    assert job["status"] == "queued"  # the job itself is left to run when a worker comes


def test_a_build_that_prints_without_end_keeps_the_start_and_end(
    homeport: Homeport, work: WorkTree
) -> None:
    """With HOMEPORT_MAX_LOG_BYTES the job's log keeps its start and end, and stays that small."""
    import uuid

    homeport.stop_workers()
    homeport.extra_env["HOMEPORT_MAX_LOG_BYTES"] = "64k"
    homeport.start_workers(2)
    work.commit(
        "loud",
        Dockerfile=f"FROM homeport-base:busybox\nRUN echo {uuid.uuid4().hex} && seq 1 60000\n"
        'COPY . /www\nCMD ["httpd", "-f", "-p", "8080", "-h", "/www"]\n',
    )
    result = work.push(homeport.remote("blog"))
    assert result.returncode == 0, result.stderr[-2000:]
    job = homeport.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
    lines = homeport.api("GET", f"/api/apps/blog/jobs/{job['id']}/log").text.splitlines()
    assert lines[0].startswith("-----> Building blog@")
    assert sum("of output left out here" in line for line in lines) == 1
    assert lines[-1].startswith("-----> done in")
    assert "-----> blog v1 is live" in lines
    path = homeport.data_dir / "logs" / "blog" / f"{job['id']}.log"
    on_disk = path.stat().st_size + sum(
        f.stat().st_size for f in path.with_suffix(".tail").iterdir()
    )
    assert on_disk <= 64 * 1024


def test_concurrent_first_pushes_share_one_repository(
    start_receiver: Callable[..., Homeport], tmp_path: Path
) -> None:
    """Two first pushes to a new app, and a webhook racing a push, leave one good repository."""
    import hashlib
    import hmac
    import json
    import threading

    from dulwich.repo import Repo

    from tests.support.servers import WEBHOOK_SECRET

    receiver = start_receiver(HOMEPORT_JOB_TIMEOUT="1")  # no worker: pushes stop waiting soon
    trees = [WorkTree(tmp_path / f"w{n}") for n in range(6)]
    commits = [tree.commit(f"tree {n}", **{"n.txt": str(n)}) for n, tree in enumerate(trees)]
    apps = ["pair-a", "pair-a", "pair-b", "pair-b", "hooked-c", "hooked-d"]
    results: dict[int, str] = {}
    barrier = threading.Barrier(8)

    def push(n: int) -> None:
        barrier.wait(30)
        done = trees[n].push(receiver.remote(apps[n]))
        results[n] = done.stderr

    def webhook(app: str) -> None:
        body = json.dumps(
            {
                "ref": "refs/heads/main",
                "after": "a" * 40,
                "repository": {
                    "name": app,
                    "full_name": f"me/{app}",
                    "clone_url": "http://127.0.0.1:1/x.git",
                },
            }
        ).encode()
        sig = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        barrier.wait(30)
        answer = httpx.post(
            receiver.url + "/hooks/github",
            content=body,
            headers={
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": f"race-{app}",
                "X-Hub-Signature-256": sig,
            },
        )
        results[-len(results) - 1] = str(answer.status_code)

    threads = [threading.Thread(target=push, args=(n,)) for n in range(6)]
    threads += [threading.Thread(target=webhook, args=(app,)) for app in ("hooked-c", "hooked-d")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for n in range(6):
        # Each push got as far as its deploy (then stopped waiting): its pack is stored.
        assert "stopped waiting" in results[n], results[n]
    assert sorted(v for k, v in results.items() if k < 0) == ["202", "202"]
    repos = receiver.data_dir / "repos"
    assert sorted(p.name for p in repos.iterdir()) == [
        "hooked-c.git",
        "hooked-d.git",
        "pair-a.git",
        "pair-b.git",
    ]
    for n, app in enumerate(apps):
        repo = Repo(str(repos / f"{app}.git"))
        try:
            assert commits[n].encode() in repo.object_store, (app, n)
        finally:
            repo.close()
