"""APScheduler 3 only wakes the worker; the database holds the truth (see slack-notes.md).

Jobs are module-level functions found by a fixed id, so a restart replaces rather than doubles
them. The tick job may not overlap itself (max_instances=1) and a late tick is simply skipped
(coalesce), because the next one does the same work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.engine.planner import plan_from_json
from bot.engine.states import RunStatus
from bot.worker.runner import Worker
from storage.db import unit_of_work
from storage.models import Run

log = logging.getLogger(__name__)
TICK_JOB = "upgradebot-worker-tick"
SYNC_JOB = "upgradebot-date-jobs"
_workers: dict[str, Worker] = {}
_schedulers: dict[str, BaseScheduler] = {}


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
    scheduler.add_job(sync_date_jobs_job, "interval", args=[worker.worker_id], id=SYNC_JOB,
                      replace_existing=True, seconds=30, max_instances=1, coalesce=True,
                      misfire_grace_time=30, next_run_time=clock.now())
    _schedulers[worker.worker_id] = scheduler
    if extra is not None:
        scheduler.add_job(extra, "interval", id=f"{TICK_JOB}-extra", replace_existing=True,
                          seconds=1, max_instances=1, coalesce=True, misfire_grace_time=30)
    scheduler.start()
    return scheduler, worker


def wake_at(scheduler: BaseScheduler, worker_id: str, when: datetime, job_id: str) -> None:
    """Add a date job (window start, deadline) that ticks the worker at that moment."""
    scheduler.add_job(tick, "date", args=[worker_id], run_date=when, id=job_id,
                      replace_existing=True, misfire_grace_time=3600)


def date_jobs(sessions: sessionmaker[Session], now: datetime) -> dict[str, datetime]:
    """The moments the worker must act at once: window starts and approval deadlines.

    A scheduled run starts at its window's start; a plan still awaiting approval expires when
    its window no longer leaves room for its estimate. The interval tick would notice both
    within `tick`, but a date job makes the start exact even with a long tick.
    """
    jobs: dict[str, datetime] = {}
    with unit_of_work(sessions) as session:
        runs = session.scalars(select(Run).where(
            Run.status.in_((RunStatus.SCHEDULED.value, RunStatus.AWAITING_APPROVAL.value)),
            Run.window_start.is_not(None))).all()
        for run in runs:
            assert run.window_start is not None and run.window_end is not None
            if run.status == RunStatus.SCHEDULED.value:
                when, key = run.window_start, f"window-start-R{run.id}"
            else:
                estimate = plan_from_json(run.plan).total_estimate_s
                when = run.window_end - timedelta(seconds=estimate)
                key = f"approval-deadline-R{run.id}"
            if when > now:
                jobs[key] = when
    return jobs


def sync_date_jobs(scheduler: BaseScheduler, worker: Worker) -> None:
    """Make the scheduler's date jobs match the runs in the database (fixed ids, replaced)."""
    wanted = date_jobs(worker.sessions, worker.clock.now())
    for job in scheduler.get_jobs():
        if job.id.startswith(("window-start-", "approval-deadline-")) and job.id not in wanted:
            job.remove()
    for key, when in wanted.items():
        wake_at(scheduler, worker.worker_id, when, key)


def sync_date_jobs_job(worker_id: str) -> None:
    """Scheduler job: keep the date jobs in step with the database."""
    worker, scheduler = _workers.get(worker_id), _schedulers.get(worker_id)
    if worker is None or scheduler is None:
        return
    try:
        sync_date_jobs(scheduler, worker)
    except Exception:  # the next sync retries; the tick covers the gap
        log.exception("could not synchronise date jobs")
