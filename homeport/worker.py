"""A worker process: runs deploy jobs from the queue."""

from __future__ import annotations

import logging

from rq import Worker

from homeport import db, queue
from homeport.config import Settings

log = logging.getLogger(__name__)


def run(settings: Settings, *, burst: bool = False) -> None:
    db.init(settings.data_dir)
    conn = queue.connect(settings.queue_url)
    # Jobs left behind by a killed worker or a Redis that lost its data run again.
    queue.recover(settings, conn)
    worker = Worker([queue.QUEUE_NAME], connection=conn)
    worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
