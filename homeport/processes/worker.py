"""A worker process: runs deploy jobs from the queue, and nothing else.

Whoever can write to Redis can put any job on the queue. rq would import the function a job
names and call it (and, with its default serializer, unpickle the job), so a worker here reads
jobs as JSON only and refuses every job that is not homeport's own runner call,
`homeport.pipeline.run_app("<app>")`, before rq resolves or imports anything it names.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job as RqJob
from rq.queue import Queue
from rq.serializers import JSONSerializer
from rq.utils import now
from rq.worker import WorkerStatus

from homeport import lifecycle, notify
from homeport.deployer import kube
from homeport.errors import HomeportError
from homeport.lifecycle import cron_watch, pipeline, queue
from homeport.names import AppNameError, check_app_name
from homeport.processes import jobprocess
from homeport.records import db
from homeport.settings import Settings

log = logging.getLogger(__name__)

# How often a worker looks for jobs and releases that a dead worker left behind; a dead
# runner is noticed once its heartbeat expires (queue.HEARTBEAT_TTL).
MAINTENANCE_SECONDS = 10

# The one function a queued job may name (lifecycle/queue.py enqueues it with the app's name).
RUNNER = queue.RUNNER_TASK
# homeport's call is under 100 bytes of JSON; anything much bigger is not homeport's, and
# is refused before it is parsed (deeply nested JSON would exhaust the parser's recursion).
MAX_CALL_BYTES = 1024
# Shown in the refusal line: enough to recognise a name, never a flood in the log.
SHOWN_CHARS = 80


class JobRefused(HomeportError):
    """A queued job that is not homeport's runner (raised if rq ever asks for its function)."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


def refusal(data: bytes) -> str | None:
    """Why a job's serialized call is not `run_app("<app>")`, or None when it is.

    Reads the bytes as JSON itself: nothing is unpickled, imported or looked up.
    """
    if len(data) > MAX_CALL_BYTES:
        return f"its call is {len(data)} bytes, not homeport's"
    try:
        call = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return "its call is not JSON (homeport never queues pickled jobs)"
    if not isinstance(call, list) or len(call) != 4:
        return "its call is not [function, instance, args, kwargs]"
    func, instance, args, kwargs = call
    if func != RUNNER:
        return f"function {_shown(func)} is not {RUNNER}"
    if instance is not None or kwargs != {} or not isinstance(args, list) or len(args) != 1:
        return f"{RUNNER} takes exactly one app name"
    if not isinstance(args[0], str):
        return f"{RUNNER} takes an app name, not {_shown(args[0])}"
    try:
        check_app_name(args[0])
    except AppNameError:
        return f"{_shown(args[0])} is not an app name"
    return None


class HomeportJob(RqJob):
    """An rq job as a homeport worker reads it: it can only ever call homeport's runner.

    `refused` says why a job read from Redis is not homeport's. Whatever the job asks for,
    it never names a function to import: no callbacks (homeport sets none, and rq would
    import and call them even for a failed job), no webhooks, no retries. A job asking for
    any of these, or for dependencies or repeats, is refused.
    """

    refused: str | None = None

    def restore(self, raw_data: Any) -> Any:
        try:
            super().restore(raw_data)
        except NoSuchJobError:
            raise  # rq skips a job whose record is gone
        except Exception as exc:  # any malformed field: the job is not homeport's
            self.refused = f"its record is unreadable ({type(exc).__name__})"
            return None
        self.refused = refusal(self.data)
        if self.refused is None:
            extras = [
                name
                for name, value in (
                    ("a success callback", self._success_callback_name),
                    ("a failure callback", self._failure_callback_name),
                    ("a stopped callback", self._stopped_callback_name),
                    ("webhooks", self.webhooks),
                    ("dependencies", self._dependency_ids),
                    ("retries", self.retries_left),
                    ("repeats", self.repeats_left),
                )
                if value
            ]
            if extras:
                self.refused = f"it has {', '.join(extras)}, which homeport never sets"
        return None

    @property
    def func(self) -> Callable[..., Any]:
        if self.refused is not None or self.func_name != RUNNER:
            raise JobRefused(f"job {self.id} is not homeport's: {self.refused}")
        return pipeline.run_app

    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None

    @property
    def should_retry(self) -> bool:
        return False

    def send_webhooks(self, status: Any, *, exc_string: str | None = None) -> None:
        return None


class HomeportWorker(Worker):
    """rq's forking worker that refuses, in the worker process, every job not homeport's.

    On SIGTERM it stops the running job rather than waiting for it (rq's warm shutdown
    would wait as long as the deploy takes): the job records itself as stopped, and the
    worker ends within jobprocess.STOP_SECONDS.
    """

    settings: Settings
    _app: str | None = None
    _stopper: threading.Thread | None = None

    def subscribe(self) -> None:
        """No subscription to rq's worker commands (shutdown, kill-horse, stop-job).

        homeport sends none of them; they would let whoever can write to Redis stop jobs. And
        since redis-py 8.2 the subscription thread, stopped after an unsubscribe, holds the
        worker's exit for up to a minute (rq's 60 s poll).
        """

    def handle_warm_shutdown_request(self) -> None:
        pid, app = self.horse_pid, self._app
        if not pid or app is None or self._stopper is not None:
            return
        # On a thread: this runs in a signal handler, and rq's wait for the job process goes
        # on beneath it (it reaps the process once it ends, then the worker stops).
        self._stopper = threading.Thread(
            target=self._stop_job, args=(pid, app), name="stop-job", daemon=False
        )
        self._stopper.start()

    def _stop_job(self, pid: int, app: str) -> None:
        if jobprocess.stop([pid]):
            log.warning("the job process %d of %s did not stop in time and was killed", pid, app)
            try:
                lifecycle.stopped(self.settings, app)
            except Exception:  # the worker stops either way; recover() settles it later
                log.exception("could not record the job of %s as stopped", app)

    def execute_job(self, job: RqJob, queue: Queue) -> None:
        reason = job.refused if isinstance(job, HomeportJob) else "it was not read by homeport"
        if reason is None:
            self._app = str(job.args[0])
            try:
                super().execute_job(job, queue)
            finally:
                self._app = None
            return
        # The job's own fields are never shown beyond _shown(): they are the sender's words.
        log.warning(
            "refused queued job %s: %s; only homeport's deploy runner runs here "
            "(check who can reach this Redis)",
            job.id,
            reason,
        )
        job.ended_at = now()
        try:
            self.handle_job_failure(job, queue, exc_string=f"refused by homeport: {reason}\n")
        finally:
            # rq moved the job to its intermediate queue on dequeue; a job that never
            # starts has to leave it here, or rq's maintenance would fail it a second time.
            queue.intermediate_queue.remove(job.id)
            self.set_state(WorkerStatus.IDLE)


def _exit_with(parent: int) -> None:
    """Stop (stopping the current job) once the process that started us is gone."""
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            log.warning("homeport up is gone; this worker stops")
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _maintain(settings: Settings) -> None:
    """Every few seconds: restart queues whose runner died, settle releases it left behind."""
    conn = queue.connect(settings.queue_url)
    while True:
        time.sleep(MAINTENANCE_SECONDS)
        try:
            lifecycle.recover(settings, conn)
            lifecycle.settle_abandoned(settings, conn)
        except Exception:  # the loop must outlive any one failure; the next round retries
            log.exception("worker maintenance failed")
        if cron_watch.wanted(settings):
            try:
                cron_watch.announce_failures(settings)
            except HomeportError as exc:
                log.warning("cannot look at the cron runs: %s", exc)
            except Exception:
                log.exception("looking at the cron runs failed")


def run(settings: Settings, *, burst: bool = False, exit_with_parent: bool = False) -> None:
    # Before any thread starts: a SIGTERM must interrupt the main thread wherever it waits.
    jobprocess.signals_to_main_thread()
    if exit_with_parent:
        threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    db.init(settings.data_dir)
    # Loaded once here rather than in every forked job: the Kubernetes client takes about
    # half a second to import, which every deploy would otherwise pay.
    kube.preload()

    conn = queue.connect(settings.queue_url)
    try:
        conn.ping()
        # Jobs left behind by a killed worker or a Redis that lost its data run again.
        lifecycle.recover(settings, conn)
        lifecycle.settle_abandoned(settings, conn)
        worker = HomeportWorker(
            [queue.QUEUE_NAME],
            connection=conn,
            job_class=HomeportJob,
            serializer=JSONSerializer,
            log_job_description=False,
        )
        worker.settings = settings
    except RedisError as exc:
        # redis-py's messages name host and port, never the password; queue_shown hides it.
        raise queue.QueueUnavailable(
            f"the worker cannot reach Redis at {settings.queue_shown}: {str(exc).rstrip('.')}; "
            "check HOMEPORT_REDIS_URL (and the password in it)"
        ) from exc
    if not burst:
        threading.Thread(target=_maintain, args=(settings,), daemon=True).start()
        # Job processes end with their job; this process lives on to deliver what they spool.
        notify.Dispatcher(settings).start()
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
