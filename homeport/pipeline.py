"""The deploy job: the stages a push goes through, run by an rq worker.

Queue tasks take plain ids so a job survives a worker restart and can be re-run by hand:
`run_app("blog")` starts the app's newest queued job.
"""

from __future__ import annotations

import logging
import time

import redis

from homeport import apps, joblog, jobs, queue, registry, releases, sources
from homeport.builder.build import BuiltImage, build_and_push, image_tag, remove_old_images
from homeport.config import Settings
from homeport.deployer import appconfig
from homeport.deployer import deploy as deployer
from homeport.deployer.spec import RunSpec
from homeport.errors import HomeportError
from homeport.manifest import Manifest, read_manifest

log = logging.getLogger(__name__)

WEBHOOK_SOURCES = frozenset({"github", "gitea", "gitlab"})


def run_app(app: str) -> None:
    """rq task: run the app's newest queued job, then hand over to the next runner."""
    settings = Settings.from_env()
    conn = queue.connect(settings.queue_url)
    try:
        with queue.Heartbeat(conn, app):
            job, superseded = queue.claim(settings, conn, app)
            for old in superseded:
                output_for(settings, old).write(
                    f"-----> superseded by a newer push ({job.commit[:12] if job else '?'})"
                )
            if job is not None:
                execute(settings, job)
    finally:
        queue.runner_done(settings, conn, app)


def settle_releases(settings: Settings, conn: redis.Redis) -> None:
    """At worker start: releases a dead worker left `deploying` get their real status.

    An app whose runner is alive is mid-rollout on another worker: its release is left alone.
    """
    for app in sorted({r.app for r in releases.deploying(settings.data_dir)}):
        if queue.runner_alive(conn, app):
            continue
        try:
            deployer.reconcile(settings, app)
        except HomeportError as exc:
            log.warning("could not check the releases %s left deploying: %s", app, exc)


def output_for(settings: Settings, job: jobs.Job) -> joblog.JobLog:
    return joblog.JobLog(
        joblog.log_path(settings.data_dir, job.app, job.id),
        joblog.Masker(settings.secrets()),
        settings.max_log_bytes,
    )


def execute(settings: Settings, job: jobs.Job) -> None:
    """Run one job to its end; every outcome is recorded, nothing escapes as a traceback."""
    out = output_for(settings, job)
    started = time.monotonic()
    try:
        release = _stages(settings, job, out)
    except HomeportError as exc:
        # The reason is stored and shown by the API and git: masked like the output.
        text = out.masker(str(exc))
        # A failed rollout already names the release: "blog v4 failed: ...; rolled back to v3".
        named = text.startswith(f"{job.app} v")
        out.write(f"-----> {text}" if named else f"-----> {job.app} failed: {text}")
        jobs.finish(settings.data_dir, job.id, jobs.FAILED, text)
        return
    except BaseException as exc:
        # rq's timeout arrives as an exception; anything else is a bug, logged in full
        # for the operator while the user reads one line.
        if type(exc).__name__ == "JobTimeoutException":
            reason = f"the job ran longer than {settings.job_timeout}s and was stopped"
        else:
            log.exception("job %s of %s crashed", job.id, job.app)
            reason = f"internal error ({type(exc).__name__}); see the homeport worker log"
        out.write(f"-----> {job.app} failed: {reason}")
        jobs.finish(settings.data_dir, job.id, jobs.FAILED, reason)
        if not isinstance(exc, Exception):
            raise
        return
    out.write(f"-----> done in {time.monotonic() - started:.1f}s")
    jobs.finish(settings.data_dir, job.id, jobs.SUCCEEDED, "", release)


def _stages(settings: Settings, job: jobs.Job, out: joblog.JobLog) -> int | None:
    # This is the app's only running job: a release still `deploying` was left by a worker
    # that died; settle it by what the cluster runs before starting another.
    deployer.reconcile(settings, job.app)
    # The app's config values are secrets to the log before anything can print them: a
    # build step or a failing rollout might.
    out.masker.add(appconfig.values(settings, job.app))
    if job.kind == "rollback":
        version = job.params.get("version")
        rolled = deployer.rollback(
            settings,
            app=job.app,
            version=int(version) if version is not None else None,
            job_id=job.id,
            emit=out,
        )
        _keep_releases(settings, job.app, out)
        _move_branch(settings, job)
        return rolled.version
    repo_path = apps.repo_path(settings.data_dir, job.app)
    repo = apps.open_repo(settings.data_dir, job.app)
    try:
        if job.source in WEBHOOK_SOURCES:
            url = str(job.params.get("clone_url", ""))
            out.write(f"-----> Fetching {job.ref} from {sources.shown(url)}")
            sources.fetch_commit(repo, url, job.ref, job.commit, settings.allow_file_urls)
        if not apps.has_commit(repo, job.commit):
            raise HomeportError(f"commit {job.commit[:12]} is not in the repository of {job.app}")
    finally:
        repo.close()
    manifest = read_manifest(repo_path, job.commit)
    # App env values are secrets to the log, wherever a build step might echo them.
    out.masker.add(manifest.env.values())
    image = build_and_push(
        repo_path=repo_path,
        app=job.app,
        commit=job.commit,
        manifest=manifest,
        registry=settings.registry,
        build_memory=settings.build_memory,
        timeout=settings.job_timeout,
        emit=out,
    )
    jobs.record_image(settings.data_dir, job.id, image.ref)
    version = _roll_out(settings, job, manifest, image, out)
    _move_branch(settings, job)
    return version


def _move_branch(settings: Settings, job: jobs.Job) -> None:
    # The deploy branch names the last commit that went live, whoever pushed it; after a
    # rollback that is the restored release's commit.
    repo = apps.open_repo(settings.data_dir, job.app)
    try:
        apps.set_ref(repo, job.ref, job.commit)
    finally:
        repo.close()


def _roll_out(
    settings: Settings, job: jobs.Job, manifest: Manifest, image: BuiltImage, out: joblog.JobLog
) -> int:
    spec = RunSpec(
        port=manifest.run.port,
        replicas=manifest.run.replicas,
        memory=manifest.run.memory,
        cpu=manifest.run.cpu,
        health_path=manifest.healthcheck.path,
        health_timeout=manifest.healthcheck.timeout,
        env=dict(manifest.env),
        ingress_host=manifest.ingress.host,
    )
    release = deployer.deploy(
        settings,
        app=job.app,
        commit=job.commit,
        image_ref=image.ref,
        spec=spec,
        secret_env={},
        job_id=job.id,
        emit=out,
    )
    if spec.ingress_host:
        out.write(f"       http://{spec.ingress_host}/")
    _keep_releases(settings, job.app, out)
    return release.version


def _pushed(settings: Settings, app: str) -> dict[str, set[str]]:
    """Digests homeport pushed for the app, as its records say, with the tags it gave them."""
    records = [(r.commit, r.image) for r in releases.history(settings.data_dir, app)]
    records += jobs.pushed_images(settings.data_dir, app)
    pushed: dict[str, set[str]] = {}
    for commit, image in records:
        if "@" in image:
            pushed.setdefault(image.rpartition("@")[2], set()).add(image_tag(commit))
    return pushed


def _keep_releases(settings: Settings, app: str, out: joblog.JobLog) -> None:
    """Drop images and Secrets of releases outside retention; never fails the deploy.

    Only images homeport's records say it pushed are deleted: other tools may push to the
    same registry repository, and their images are not homeport's to remove.
    """
    try:
        keep = deployer.keep_digests(settings, app)
        pushed = _pushed(settings, app)
        removable = set(pushed) - keep
        own_tags = set().union(*pushed.values())
        removed = registry.prune(settings.registry, app, removable, own_tags)
        untagged = remove_old_images(settings.registry, app, removable, own_tags)
    except HomeportError as exc:
        log.warning("retention of %s skipped: %s", app, exc)
        out.write(f"       (old images were not cleaned up: {exc})")
        return
    if removed or untagged:
        out.write(
            f"       removed {len(removed)} image(s) from the registry and {len(untagged)} "
            "from the Docker engine (releases no longer kept)"
        )
