"""The whole path with real pieces: git push -> queue -> Docker build -> registry -> rollout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.support.cluster import KUBECONFIG, Kube, Poller, service_proxy_get
from tests.support.gitwork import WorkTree
from tests.support.servers import Homeport, start_redis
from tests.support.waiting import wait_until
from tests.support.webhooks import rollback_headers

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BASE = '[build]\nargs = { BASE = "homeport-base:busybox" }\n'


def _blog(path: Path) -> WorkTree:
    """The example blog, built on the local base; a short health timeout for the test."""
    work = WorkTree(path, dockerfile=None)
    shutil.copytree(ROOT / "examples" / "blog", path, dirs_exist_ok=True)
    manifest = (path / "homeport.toml").read_text().replace("timeout = 60", "timeout = 20")
    (path / "homeport.toml").write_text(LOCAL_BASE + manifest)
    return work


def _page(work: WorkTree, text: str) -> None:
    work.write("www/index.html", f"<html><body><h1>{text}</h1></body></html>\n")


def _releases(hp: Homeport, app: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = hp.api("GET", f"/api/apps/{app}/releases").json()["releases"]
    return found


def _start(tmp_path: Path, redis_url: str, namespace: str) -> Homeport:
    return Homeport(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        extra_env={"HOMEPORT_KUBECONFIG": str(KUBECONFIG), "HOMEPORT_NAMESPACE": namespace},
    ).start()


def test_blog_lifecycle(
    tmp_path: Path, kube: Kube, docker_services: str, apps_namespace: str
) -> None:
    """Push, a failing push rolled back, a fix, a signed rollback, with restarts in between."""
    redis = start_redis(tmp_path / "redis")
    hp = _start(tmp_path, redis.url, apps_namespace)
    try:
        work = _blog(tmp_path / "blog")
        _page(work, "first post")
        first = work.commit("first post")

        # 1. The blog goes live and serves the commit's text.
        pushed = work.push(hp.remote("blog"))
        assert pushed.returncode == 0, pushed.stderr
        assert "remote:        #0 building with" in pushed.stderr
        assert "remote: -----> Pushing 127.0.0.1:5000/blog:" in pushed.stderr
        assert "remote: -----> blog v1 is live" in pushed.stderr
        assert "remote:        http://blog.home.lan/" in pushed.stderr
        status, body = service_proxy_get(kube, apps_namespace, "blog")
        assert (status, "first post" in body) == (200, True)

        # 5. Restart everything (receiver, workers, Redis): nothing is lost.
        hp.stop()
        redis.stop()
        redis = start_redis(tmp_path / "redis")
        hp = _start(tmp_path, redis.url, apps_namespace)
        job = hp.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
        assert job["status"] == "succeeded"
        log = hp.api("GET", f"/api/apps/blog/jobs/{job['id']}/log").text
        assert "-----> blog v1 is live" in log
        assert [r["status"] for r in _releases(hp, "blog")] == ["live"]

        # 2. A commit whose /healthz fails is rolled back; the old page answered throughout.
        (work.path / "www" / "healthz").unlink()
        _page(work, "broken post")
        work.commit("break healthz")
        with Poller(lambda: service_proxy_get(kube, apps_namespace, "blog")) as poller:
            pushed = work.push(hp.remote("blog"))
        assert pushed.returncode != 0
        assert "blog v2 failed: readiness probe failed" in pushed.stderr
        assert "rolled back to v1" in pushed.stderr
        assert "! [remote rejected] main -> main (deploy failed:" in pushed.stderr
        assert len(poller.answers) > 20
        bad = [a for a in poller.answers if a[0] != 200 or "first post" not in a[1]]
        assert bad == []
        listed = _releases(hp, "blog")
        assert [(r["version"], r["status"]) for r in listed] == [(2, "failed"), (1, "live")]
        assert "readiness probe failed" in listed[0]["reason"]

        # 3. A fixed commit goes live, then a signed rollback restores release 1.
        work.write("www/healthz", "ok\n")
        _page(work, "fixed post")
        work.commit("fix")
        pushed = work.push(hp.remote("blog"))
        assert pushed.returncode == 0, pushed.stderr
        assert "fixed post" in service_proxy_get(kube, apps_namespace, "blog")[1]

        hp.stop()
        redis.stop()
        redis = start_redis(tmp_path / "redis")
        hp = _start(tmp_path, redis.url, apps_namespace)

        body = json.dumps({"version": 1}).encode()
        path = "/api/apps/blog/rollback"
        refused = httpx.post(
            hp.url + path,
            content=body,
            headers=rollback_headers(path, body, secret="wrong-secret-0123456789"),
        )
        assert refused.status_code == 401
        answer = httpx.post(hp.url + path, content=body, headers=rollback_headers(path, body))
        assert answer.status_code == 202, answer.text
        assert hp.wait_job("blog", answer.json()["job"])["status"] == "succeeded"
        status, page = service_proxy_get(kube, apps_namespace, "blog")
        assert (status, "first post" in page) == (200, True)
        listed = _releases(hp, "blog")
        assert [(r["version"], r["status"], r["rollback_of"]) for r in listed] == [
            (4, "live", 1),
            (3, "rolled_back", None),
            (2, "failed", None),
            (1, "superseded", None),
        ]
        assert listed[0]["commit"] == first
        # The deploy branch names what is live again.
        remote = subprocess.run(
            ["git", "ls-remote", hp.remote("blog"), "main"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert remote.stdout.split()[0] == first
        assert hp.api("POST", "/api/apps/blog/rollback", json={"version": 9}).status_code == 404
    finally:
        hp.stop()
        redis.stop()


def _job_status(hp: Homeport, app: str) -> str | None:
    """Status of the app's newest job (None before it has one)."""
    listed = hp.api("GET", f"/api/apps/{app}/jobs")
    jobs = listed.json()["jobs"] if listed.status_code == 200 else []
    return str(jobs[0]["status"]) if jobs else None


def _queued(hp: Homeport, app: str, commit: str) -> bool:
    listed = hp.api("GET", f"/api/apps/{app}/jobs")
    jobs = listed.json()["jobs"] if listed.status_code == 200 else []
    return any(j["commit"] == commit and j["status"] == "queued" for j in jobs)


def test_parallel_apps_and_superseding(
    tmp_path: Path, kube: Kube, docker_services: str, apps_namespace: str, redis_url: str
) -> None:
    """A second app deploys while the first builds; of two quick pushes the later goes live."""
    hp = _start(tmp_path, redis_url, apps_namespace)
    try:
        blog = _blog(tmp_path / "blog")
        blog.write(
            "Dockerfile",
            (blog.path / "Dockerfile")
            .read_text()
            .replace("COPY www/ /www/", "RUN sleep 3\nCOPY www/ /www/"),
        )
        _page(blog, "slow blog")
        blog.commit("slow")
        api = WorkTree(tmp_path / "api", dockerfile=None)
        shutil.copytree(ROOT / "examples" / "api", api.path, dirs_exist_ok=True)
        (api.path / "homeport.toml").write_text(
            LOCAL_BASE + (api.path / "homeport.toml").read_text()
        )
        api.commit("api")
        slow = blog.push_async(hp.remote("blog"))
        wait_until(lambda: _job_status(hp, "blog") == "running", timeout=60, what="blog builds")
        fast = api.push(hp.remote("api"))
        assert fast.returncode == 0, fast.stderr
        _, err = slow.communicate(timeout=300)
        assert slow.returncode == 0, err
        a = hp.api("GET", "/api/apps/blog/jobs").json()["jobs"][0]
        b = hp.api("GET", "/api/apps/api/jobs").json()["jobs"][0]
        assert b["started_at"] < a["ended_at"]
        status, body = service_proxy_get(kube, apps_namespace, "api", "cgi-bin/status")
        assert status == 200 and json.loads(body)["greeting"] == "hello from the api"

        # Two quick pushes to one app: the later commit ends live, the earlier superseded.
        hp.stop_workers()
        _page(blog, "one")
        one = blog.commit("one")
        push_one = blog.push_async(hp.remote("blog"), f"{one}:refs/heads/main")
        wait_until(lambda: _queued(hp, "blog", one), timeout=60, what="the first push queued")
        _page(blog, "two")
        two = blog.commit("two")
        push_two = blog.push_async(hp.remote("blog"), f"{two}:refs/heads/main")
        wait_until(lambda: _queued(hp, "blog", two), timeout=60, what="the second push queued")
        hp.start_workers(2)
        _, err_two = push_two.communicate(timeout=300)
        _, err_one = push_one.communicate(timeout=300)
        assert push_two.returncode == 0, err_two
        assert push_one.returncode != 0 and "superseded" in err_one
        jobs = {
            j["commit"]: j["status"] for j in hp.api("GET", "/api/apps/blog/jobs").json()["jobs"]
        }
        assert (jobs[one], jobs[two]) == ("superseded", "succeeded")
        assert "two" in service_proxy_get(kube, apps_namespace, "blog")[1]
    finally:
        hp.stop()


MONOREPO_DOCKERFILE = """\
FROM homeport-base:busybox AS deps
COPY deps.txt /deps.txt
RUN --mount=type=cache,target=/cache,id={cache} for dep in $(cat /deps.txt); do \\
    if [ -f /cache/$dep ]; then echo "reused $dep"; \\
    else echo "fetched $dep"; echo $dep > /cache/$dep; fi; done; /bin/busybox cp -r /cache /deps

FROM homeport-base:busybox AS runtime
COPY --from=deps /deps /www/deps
RUN --mount=type=secret,id=NPM_TOKEN,required=true \\
    /bin/busybox sha256sum /run/secrets/NPM_TOKEN | /bin/busybox cut -c1-64 > /www/token.sha256 \\
    && echo "token is $(cat /run/secrets/NPM_TOKEN) ({cache})"
COPY www/ /www/
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]

FROM runtime AS debug
RUN echo "the debug stage was built" && exit 1
"""


def test_monorepo_service_with_cache_mount_secret_and_target_goes_live(
    tmp_path: Path, kube: Kube, docker_services: str, apps_namespace: str, redis_url: str
) -> None:
    """A service in a subdirectory, built to its runtime stage with a cache mount and a build
    secret from the app's config, goes live; the secret is masked; a missing one fails."""
    import hashlib
    import uuid

    hp = _start(tmp_path, redis_url, apps_namespace)
    secret = "npm-" + uuid.uuid4().hex
    try:
        work = WorkTree(tmp_path / "mono", dockerfile=None)
        work.write(
            "homeport.toml",
            '[build]\ncontext = "services/web"\ntarget = "runtime"\nsecrets = ["NPM_TOKEN"]\n',
        )
        work.write("services/web/Dockerfile", MONOREPO_DOCKERFILE.format(cache=apps_namespace))
        work.write("services/web/deps.txt", "alpha beta\n")
        work.write("services/web/www/index.html", "<h1>web v1</h1>\n")
        work.write("services/api/README", "another service, not in the context\n")
        work.commit("monorepo")

        # 1. NPM_TOKEN is not set yet: the push fails naming it, before any build.
        pushed = work.push(hp.remote("web"))
        assert pushed.returncode != 0
        assert "names NPM_TOKEN in [build] secrets of homeport.toml, but it is not set" in (
            pushed.stderr
        )
        assert "homeport config set web NPM_TOKEN=..." in pushed.stderr

        # 2. Set, the service goes live with the secret used and never shown.
        answer = hp.api("POST", "/api/apps/web/config", json={"set": {"NPM_TOKEN": secret}})
        assert answer.status_code == 200, answer.text
        pushed = work.push(hp.remote("web"))
        assert pushed.returncode == 0, pushed.stderr
        assert "remote: -----> web v1 is live" in pushed.stderr
        # The step is this run's own ({cache}), so it runs rather than coming from the cache.
        assert "token is ***" in pushed.stderr and secret not in pushed.stderr
        assert "fetched alpha" in pushed.stderr and "debug stage" not in pushed.stderr
        assert secret not in hp.api("GET", "/api/apps/web/jobs").text
        status, page = service_proxy_get(kube, apps_namespace, "web")
        assert (status, "web v1" in page) == (200, True)
        _, digest = service_proxy_get(kube, apps_namespace, "web", "token.sha256")
        assert digest.strip() == hashlib.sha256(secret.encode()).hexdigest()

        # 3. A new dependency re-runs the step, which reuses what the cache mount holds.
        work.write("services/web/deps.txt", "alpha beta gamma\n")
        work.write("services/web/www/index.html", "<h1>web v2</h1>\n")
        work.commit("gamma")
        pushed = work.push(hp.remote("web"))
        assert pushed.returncode == 0, pushed.stderr
        assert "reused alpha" in pushed.stderr and "fetched gamma" in pushed.stderr
        assert "fetched alpha" not in pushed.stderr
        _, listing = service_proxy_get(kube, apps_namespace, "web", "deps/gamma")
        assert listing.strip() == "gamma"
        status, page = service_proxy_get(kube, apps_namespace, "web")
        assert (status, "web v2" in page) == (200, True)
    finally:
        hp.stop()
