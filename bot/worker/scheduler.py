"""APScheduler 3 only wakes the worker; the database holds the truth (see slack-notes.md).

Jobs are module-level functions found by a fixed id, so a restart replaces rather than doubles
them. The tick job may not overlap itself (max_instances=1) and a late tick is simply skipped
(coalesce), because the next one does the same work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.worker.runner import Worker

log = logging.getLogger(__name__)
TICK_JOB = "upgradebot-worker-tick"
_workers: dict[str, Worker] = {}


def tick(worker_id: str) -> None:
    """Scheduler job: one pass of the worker (exceptions are logged, the next tick retries)."""
    worker = _workers.get(worker_id)
    if worker is None:
        return
    try:
        worker.tick()
    except Exception:  # the scheduler thread must live on; the database keeps the state
        log.exception("worker tick failed; retrying at the next tick")


def start_worker(*, sessions: sessionmaker[Session], settings: Settings, clock: Clock,
                 clients: Callable[[str], DmaClient], worker_id: str | None = None,
                 extra: Callable[[], None] | None = None) -> tuple[BackgroundScheduler, Worker]:
    """Start a background scheduler that ticks the worker every `timing.tick`."""
    worker = Worker(session_factory=sessions, settings=settings, clock=clock, clients=clients,
                    worker_id=worker_id)
    _workers[worker.worker_id] = worker
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(tick, "interval", args=[worker.worker_id], id=TICK_JOB,
                      replace_existing=True, seconds=settings.timing.tick.total_seconds(),
                      max_instances=1, coalesce=True, misfire_grace_time=30)
    if extra is not None:
        scheduler.add_job(extra, "interval", id=f"{TICK_JOB}-extra", replace_existing=True,
                          seconds=1, max_instances=1, coalesce=True, misfire_grace_time=30)
    scheduler.start()
    return scheduler, worker


def wake_at(scheduler: BackgroundScheduler, worker_id: str, when: datetime, job_id: str) -> None:
    """Add a date job (window start, deadline) that ticks the worker at that moment."""
    scheduler.add_job(tick, "date", args=[worker_id], run_date=when, id=job_id,
                      replace_existing=True, misfire_grace_time=3600)
