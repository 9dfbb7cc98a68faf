"""The deploy job: the stages a push goes through, run by an rq worker.

Queue tasks take plain ids so a job survives a worker restart and can be re-run by hand:
`run_app("blog")` starts the app's newest queued job. Every record this writes goes through
the lifecycle (homeport/lifecycle/).
"""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from types import FrameType

from homeport import apps, lifecycle
from homeport.builder.build import BuiltImage, build_and_push
from homeport.builder.errors import BuildCancelled
from homeport.deployer import appconfig
from homeport.errors import HomeportError
from homeport.git import fetch
from homeport.lifecycle import queue
from homeport.lifecycle.common import WEBHOOK_SOURCES
from homeport.manifest import Manifest, read_manifest
from homeport.records import joblog, jobs
from homeport.settings import Settings

log = logging.getLogger(__name__)


class Shutdown(BaseException):
    """homeport is stopping: the job ends now, through its normal failure path."""


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Once: a second SIGTERM (the worker and `homeport up` both send one) must not
    # interrupt the job while it records that it stopped.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Shutdown


def run_app(app: str) -> None:
    """rq task: run the app's newest queued job, then hand over to the next runner."""
    # A stopping worker (and `homeport up`) stops its job process with SIGTERM.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    settings = Settings.from_env()
    conn = queue.connect(settings.queue_url)
    began = time.monotonic()
    try:
        with queue.Heartbeat(conn, app):
            job = lifecycle.claim(settings, conn, app)
            while job is not None:
                superseded = execute(settings, job)
                # The newer job that stopped this one runs next, in this runner: queued behind
                # every other app's runner it would wait for work this one just gave up. Only
                # while rq's limit (job timeout plus its slack) still has room for a whole job.
                if not superseded or time.monotonic() - began > queue.RQ_TIMEOUT_SLACK:
                    break
                job = lifecycle.claim(settings, conn, app)
    finally:
        lifecycle.hand_over(settings, conn, app)


def execute(settings: Settings, job: jobs.Job) -> bool:
    """Run one job to its end; every outcome is recorded, nothing escapes as a traceback.

    Returns whether a newer job superseded it.
    """
    out = lifecycle.output(settings, job)
    started = time.monotonic()
    try:
        release = _stages(settings, job, out)
    except lifecycle.Superseded as newer:
        lifecycle.supersede(settings, job, newer.newer)
        return True
    except HomeportError as exc:
        # The reason is stored and shown by the API and git: masked like the output.
        text = out.masker(str(exc))
        named = isinstance(exc, lifecycle.ReleaseFailed)
        out.write(f"-----> {text}" if named else f"-----> {job.app} failed: {text}")
        lifecycle.fail(settings, job, text)
        return False
    except BaseException as exc:
        # rq's timeout and a shutdown arrive as exceptions; anything else is a bug, logged in
        # full for the operator while the user reads one line.
        if queue.is_timeout(exc):
            reason = f"the job ran longer than {settings.job_timeout}s and was stopped"
        elif isinstance(exc, Shutdown):
            reason = lifecycle.SHUTDOWN_REASON
        else:
            log.exception("job %s of %s crashed", job.id, job.app)
            reason = f"internal error ({type(exc).__name__}); see the homeport worker log"
        out.write(f"-----> {job.app} failed: {reason}")
        lifecycle.fail(settings, job, reason)
        if not isinstance(exc, Exception | Shutdown):
            raise
        return False
    out.write(f"-----> done in {time.monotonic() - started:.1f}s")
    lifecycle.succeed(settings, job, release)
    return False


def _stages(settings: Settings, job: jobs.Job, out: joblog.JobLog) -> int | None:
    # The app's config values are secrets to the log before anything can print them: a
    # build step or a failing rollout might.
    config = appconfig.values(settings, job.app)
    out.masker.add(config.values())
    if job.kind == "rollback":
        with lifecycle.stage(settings, job, "rollout"):
            rolled = lifecycle.rollback_release(settings, job, out)
        lifecycle.keep_releases(settings, job.app, out)
        _move_branch(settings, job)
        return rolled.version
    if job.kind == jobs.CONFIG:
        # Same image and commit as the live release: no build, the branch stays where it is.
        changed = lifecycle.config_release(settings, job, out, config)
        lifecycle.keep_releases(settings, job.app, out)
        return changed.version
    repo_path = apps.repo_path(settings.data_dir, job.app)
    repo = apps.open_repo(settings.data_dir, job.app)
    try:
        if job.source in WEBHOOK_SOURCES:
            _fetch(settings, job, out)
        if not apps.has_commit(repo, job.commit):
            raise HomeportError(f"commit {job.commit[:12]} is not in the repository of {job.app}")
    finally:
        repo.close()
    manifest = read_manifest(repo_path, job.commit)
    manifest.check_app(job.app)
    # App env values are secrets to the log, wherever a build step might echo them.
    out.masker.add(manifest.env.values())
    secrets = {name: config[name] for name in manifest.build.secrets if name in config}
    try:
        with lifecycle.stage(settings, job, "build"):
            image = _build(settings, job, out, repo_path, manifest, secrets)
    except BuildCancelled:
        # Stopped for a newer queued job: superseded by it, like an image built too late.
        lifecycle.check_newest(settings, job)
        raise HomeportError(
            "the build was stopped for a newer push that is gone; push again"
        ) from None
    lifecycle.record_image(settings, job, image.ref)
    spec = manifest.run_spec()
    lifecycle.check_newest(settings, job)
    with lifecycle.stage(settings, job, "rollout"):
        release = lifecycle.deploy_release(settings, job, image=image.ref, spec=spec, emit=out)
    if spec.ingress_host:
        out.write(f"       http://{spec.ingress_host}/")
    lifecycle.keep_releases(settings, job.app, out)
    _move_branch(settings, job)
    return release.version


def _build(
    settings: Settings,
    job: jobs.Job,
    out: joblog.JobLog,
    repo_path: Path,
    manifest: Manifest,
    secrets: dict[str, str],
) -> BuiltImage:
    return build_and_push(
        repo_path=repo_path,
        app=job.app,
        commit=job.commit,
        manifest=manifest,
        registry=settings.registry,
        build_memory=settings.build_memory,
        build_cache=settings.build_cache,
        min_free_disk=settings.min_free_disk,
        secrets=secrets,
        timeout=settings.job_timeout,
        emit=out,
        max_blob_bytes=settings.max_blob_bytes,
        max_context_bytes=settings.max_context_bytes,
        pruned_stamp=settings.data_dir / "build-cache.pruned",
        cancelled=lambda: lifecycle.newer_queued(settings, job),
    )


def _fetch(settings: Settings, job: jobs.Job, out: joblog.JobLog) -> None:
    url = str(job.params.get("clone_url", ""))
    ssh_url = str(job.params.get("ssh_url", ""))
    where = fetch.describe(settings.data_dir, job.app, url, ssh_url, settings.allow_file_urls)
    out.write(f"-----> Fetching {job.ref} from {where}")
    with lifecycle.stage(settings, job, "fetch"):
        _fetch_commit(settings, job, out, url, ssh_url)


def _fetch_commit(
    settings: Settings, job: jobs.Job, out: joblog.JobLog, url: str, ssh_url: str
) -> None:
    fetch.fetch(
        data_dir=settings.data_dir,
        repo_path=apps.repo_path(settings.data_dir, job.app),
        app=job.app,
        url=url,
        ssh_url=ssh_url,
        ref=job.ref,
        commit=job.commit,
        allow_file=settings.allow_file_urls,
        emit=out.write,
        timeout=settings.job_timeout,
        max_blob_bytes=settings.max_blob_bytes,
    )


def _move_branch(settings: Settings, job: jobs.Job) -> None:
    # The deploy branch names the last commit that went live, whoever pushed it; after a
    # rollback that is the restored release's commit.
    repo = apps.open_repo(settings.data_dir, job.app)
    try:
        apps.set_ref(repo, job.ref, job.commit)
    finally:
        repo.close()
