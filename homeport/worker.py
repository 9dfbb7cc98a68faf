"""A worker process: runs deploy jobs from the queue."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from rq import Worker

from homeport import db, queue
from homeport.config import Settings

log = logging.getLogger(__name__)


def _exit_with(parent: int) -> None:
    """Stop (after the current job) once the process that started us is gone."""
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            log.warning("homeport up is gone; this worker stops after its current job")
            os.kill(os.getpid(), signal.SIGTERM)
            return


def run(settings: Settings, *, burst: bool = False, exit_with_parent: bool = False) -> None:
    if exit_with_parent:
        threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    db.init(settings.data_dir)
    conn = queue.connect(settings.queue_url)
    # Jobs left behind by a killed worker or a Redis that lost its data run again.
    queue.recover(settings, conn)
    worker = Worker([queue.QUEUE_NAME], connection=conn)
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
