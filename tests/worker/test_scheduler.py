"""APScheduler only wakes the worker: a fixed-id tick, and date jobs at window starts/deadlines."""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from bot.engine.windows import Window
from bot.worker.runner import Worker
from bot.worker.scheduler import TICK_JOB, Deadline, start_worker, stop_worker, sync_date_jobs
from tests.support.engine_harness import harness


def test_date_jobs_follow_the_runs_windows(database_url: str) -> None:
    with harness(database_url) as h:
        soon = Window(start=h.clock.now() + timedelta(hours=2), duration=timedelta(hours=4),
                      tz="Europe/London")
        scheduled = h.plan(strategy="full-outage", window=soon)
        plan = h.services.plan("lab", "10.1.0.1")
        waiting = h.services.submit(plan, requester="U0REQUESTER", window=soon)
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.start(paused=True)
        try:
            sync_date_jobs(scheduler, h.worker)
            jobs = {job.id: job.next_run_time for job in scheduler.get_jobs()}
            # The approved run wakes the worker at its window's start; the unapproved plan at
            # the last moment its window still leaves room for its estimate.
            assert jobs[f"window-start-{scheduled}"] == soon.start
            assert jobs[f"approval-deadline-{waiting}"] == soon.end - timedelta(
                seconds=plan.total_estimate_s)
            # Once the run has started, its date job goes; syncing twice adds nothing.
            h.clock.set(soon.start)
            h.worker.tick()
            sync_date_jobs(scheduler, h.worker)
            sync_date_jobs(scheduler, h.worker)
            ids = [job.id for job in scheduler.get_jobs()]
            assert ids == [f"approval-deadline-{waiting}"]
        finally:
            scheduler.shutdown(wait=False)


def test_the_tick_job_has_a_fixed_id_and_never_overlaps(database_url: str) -> None:
    with harness(database_url) as h:
        scheduler, worker = start_worker(Worker(
            session_factory=h.sessions, settings=h.settings, clock=h.clock,
            clients=h.worker.clients, worker_id="sched-test"))
        try:
            job = scheduler.get_job(TICK_JOB)
            assert job is not None and job.max_instances == 1 and job.coalesce
            assert job.trigger.interval == h.settings.timing.tick
            assert worker.worker_id == "sched-test"
        finally:
            # The date-job sync runs at start and needs the job store: stopping while it runs
            # must neither deadlock nor leave it running against a closed harness.
            abandoned = stop_worker(scheduler, worker, Deadline.after(10))
        assert abandoned == ()
