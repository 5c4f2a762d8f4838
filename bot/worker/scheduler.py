"""APScheduler 3 only wakes the worker; the database holds the truth (see slack-notes.md).

The worker itself runs in a `VisitLoop` (a bounded pool of visits that sleeps until the next
due moment). Jobs are module-level functions found by a fixed id, so a restart replaces rather
than doubles them: the tick job wakes the loop every `timing.tick` (for work another process
made due), date jobs wake it at window starts and approval deadlines. The tick job may not
overlap itself (max_instances=1) and a late tick is simply skipped (coalesce).

Stopping is bounded (`STOP_BUDGET_S`). APScheduler's `shutdown(wait=True)` holds the job-store
lock while it waits for running jobs, and the date-job sync needs that lock from inside a job: so
the scheduler is shut down without waiting, and our own jobs, which run on daemon threads, are
waited for until a deadline. A visit still under way then is abandoned: its lease expires and
another worker takes the step over, reading the cluster before it acts, as after kill -9.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from bot.runs.waiting import wake_moments
from bot.worker.loop import VisitLoop
from bot.worker.runner import Worker
from storage.db import unit_of_work

log = logging.getLogger(__name__)
TICK_JOB = "upgradebot-worker-tick"
SYNC_JOB = "upgradebot-date-jobs"
STOP_BUDGET_S = 5.0  # SIGTERM/SIGINT to exit, whatever job is running
EXIT_MARGIN_S = 1.5  # of that budget, kept for closing up and leaving on a busy host
_workers: dict[str, Worker] = {}
_schedulers: dict[str, BaseScheduler] = {}
_job_threads: dict[str, JobThreads] = {}
_loops: dict[str, VisitLoop] = {}


def tick(worker_id: str) -> None:
    """Scheduler job: wake the worker's loop (or, without one, make one serial pass)."""
    loop = _loops.get(worker_id)
    if loop is not None:
        loop.wake(housekeeping=True)
        return
    worker = _workers.get(worker_id)
    if worker is None:
        return
    try:
        worker.tick()
    except Exception:  # the scheduler thread must live on; the database keeps the state
        log.exception("worker tick failed; retrying at the next tick")


def wake_job(worker_id: str) -> None:
    """Scheduler job: make the worker's loop look for due work now."""
    loop = _loops.get(worker_id)
    if loop is not None:
        loop.wake()


def start_worker(worker: Worker, *, extra: Callable[[], None] | None = None
                 ) -> tuple[BackgroundScheduler, Worker]:
    """Start the worker's visit loop and a background scheduler that wakes it."""
    settings, clock = worker.settings, worker.clock
    _workers[worker.worker_id] = worker
    loop = _loops[worker.worker_id] = VisitLoop(worker)
    loop.start()
    threads = _job_threads[worker.worker_id] = JobThreads()
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": threads})
    scheduler.add_job(wake_job, "interval", args=[worker.worker_id], id=TICK_JOB,
                      replace_existing=True, seconds=settings.timing.tick.total_seconds(),
                      max_instances=1, coalesce=True, misfire_grace_time=30)
    scheduler.add_job(sync_date_jobs_job, "interval", args=[worker.worker_id], id=SYNC_JOB,
                      replace_existing=True, seconds=30, max_instances=1, coalesce=True,
                      misfire_grace_time=30, next_run_time=clock.now())
    _schedulers[worker.worker_id] = scheduler
    scheduler.add_listener(_tick_started, EVENT_JOB_SUBMITTED)
    if extra is not None:
        scheduler.add_job(extra, "interval", id=f"{TICK_JOB}-extra", replace_existing=True,
                          seconds=1, max_instances=1, coalesce=True, misfire_grace_time=30)
    scheduler.start()
    return scheduler, worker


def _tick_started(event: JobSubmissionEvent) -> None:
    """Record how late a tick starts after its scheduled time (the scheduler's own clock)."""
    if event.job_id == TICK_JOB and event.scheduled_run_times:
        late = datetime.now(UTC) - max(event.scheduled_run_times)
        metrics.tick_lag(late.total_seconds())


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
    with unit_of_work(sessions) as session:
        return {key: when for key, when in wake_moments(session).items() if when > now}


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


@dataclass(frozen=True)
class Deadline:
    """A moment on the monotonic clock by which the stop must be done."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline `seconds` from now."""
        return cls(time.monotonic() + seconds)

    @classmethod
    def for_stop(cls) -> Deadline:
        """The deadline of a stop asked for now, leaving the margin for the process's exit."""
        return cls.after(STOP_BUDGET_S - EXIT_MARGIN_S)

    def left(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - time.monotonic())


class JobThreads(BaseExecutor):  # type: ignore[misc]
    """Runs each job on a daemon thread, so a stop can wait for jobs with a deadline.

    APScheduler's pool threads are joined when the interpreter exits, so one visit stuck on a
    silent cluster would keep a stopped process alive; these can be left behind.
    """

    def __init__(self) -> None:
        super().__init__()
        self._running: dict[threading.Thread, str] = {}
        self._guard = threading.Lock()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        thread = threading.Thread(target=self._run, args=(job, run_times), daemon=True,
                                  name=f"upgradebot-job-{job.id}")
        with self._guard:
            self._running[thread] = job.id
        thread.start()

    def _run(self, job: Job, run_times: list[datetime]) -> None:
        try:
            events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
        except Exception as exc:  # run_job catches the job's own; APScheduler logs the rest
            self._run_job_error(job.id, exc, exc.__traceback__)
        else:
            self._run_job_success(job.id, events)
        finally:
            with self._guard:
                self._running.pop(threading.current_thread(), None)

    def shutdown(self, wait: bool = True) -> None:
        """Never wait here: APScheduler calls this holding the job-store lock jobs may need.

        `stop_worker` waits for the jobs afterwards, with a deadline.
        """

    def join(self, deadline: Deadline) -> tuple[str, ...]:
        """Wait for the running jobs until the deadline; return the ids of those still running."""
        with self._guard:
            threads = list(self._running)
        for thread in threads:
            thread.join(deadline.left())
        with self._guard:
            return tuple(sorted(set(self._running.values())))


def stop_worker(scheduler: BackgroundScheduler, worker: Worker,
                deadline: Deadline) -> tuple[str, ...]:
    """Stop claiming, stop the scheduler, wait for its jobs until the deadline; return the rest.

    The visit under way finishes if it can; one that cannot is abandoned with its lease.
    """
    worker.stop()
    _workers.pop(worker.worker_id, None)  # a job that starts now does nothing
    _schedulers.pop(worker.worker_id, None)
    loop = _loops.pop(worker.worker_id, None)
    if scheduler.running:
        scheduler.shutdown(wait=False)  # never holds the job-store lock while jobs wait for it
    finished = loop.stop(deadline.left()) if loop is not None else True
    threads = _job_threads.pop(worker.worker_id, None)
    left = threads.join(deadline) if threads is not None else ()
    visiting = worker.visiting
    if not finished:
        left = (*left, "the worker loop")
    return (*left, f"the visit of {visiting}") if left and visiting else left


def finish_within(work: Callable[[], object], name: str, deadline: Deadline) -> bool:
    """Run a step of the stop on a daemon thread; True if it finished before the deadline."""
    thread = threading.Thread(target=work, name=f"upgradebot-stop-{name}", daemon=True)
    thread.start()
    thread.join(deadline.left())
    return not thread.is_alive()
