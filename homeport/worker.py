"""A worker process: runs deploy jobs from the queue."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from rq import Worker

from homeport import db, lifecycle, queue
from homeport.config import Settings

log = logging.getLogger(__name__)

# How often a worker looks for jobs and releases that a dead worker left behind; a dead
# runner is noticed once its heartbeat expires (queue.HEARTBEAT_TTL).
MAINTENANCE_SECONDS = 10


def _exit_with(parent: int) -> None:
    """Stop (after the current job) once the process that started us is gone."""
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            log.warning("homeport up is gone; this worker stops after its current job")
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


def run(settings: Settings, *, burst: bool = False, exit_with_parent: bool = False) -> None:
    if exit_with_parent:
        threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    db.init(settings.data_dir)
    # Imported once here rather than in every forked job: the Docker and Kubernetes clients
    # take about half a second to import, which every deploy would otherwise pay.
    from homeport import pipeline  # noqa: F401

    conn = queue.connect(settings.queue_url)
    # Jobs left behind by a killed worker or a Redis that lost its data run again.
    lifecycle.recover(settings, conn)
    lifecycle.settle_abandoned(settings, conn)
    if not burst:
        threading.Thread(target=_maintain, args=(settings,), daemon=True).start()
    worker = Worker([queue.QUEUE_NAME], connection=conn)
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
