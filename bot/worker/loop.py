"""The serving worker: a bounded pool of visits, woken at the next due moment or by an event.

One dispatcher thread claims due steps (as many as there are free visitors, in one query) and
hands them to `worker.concurrency` visitor threads, so a slow or silent cluster holds one
visitor and never a step of another cluster or another run. Between claims it sleeps until the
earliest `next_check_at`, a waiting run's moment, or an event: a visit finishing, a run or step
changing in this process (a commit flagged by `bot.runs.transitions`), a date job. It also looks
at least every `timing.tick`, for work another process made due. Threads are daemons: a stop
waits for them until a deadline and abandons a stuck visit to its lease.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.runs.waiting import wake_moments
from bot.worker.runner import Visit, Worker
from storage import repo
from storage.db import WAKE_WORKER, unit_of_work

log = logging.getLogger(__name__)
HOUSEKEEPING_EVERY = timedelta(seconds=30)  # waiting runs another process may have changed


class VisitLoop:
    """Runs a worker with `worker.concurrency` visits in flight, woken when work is due."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.size = worker.concurrency
        self._wake = threading.Event()
        self._housekeep = threading.Event()
        self._queue: queue.SimpleQueue[Visit | None] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self.passes = 0  # dispatcher passes, for tests and health

    def start(self) -> None:
        """Start the dispatcher and the visitors; listen for commits that may make work due."""
        event.listen(self.worker.sessions, "after_commit", self._after_commit)
        self._housekeep.set()
        self._threads = [threading.Thread(target=self._visitor, daemon=True,
                                          name=f"upgradebot-visit-{i}")
                         for i in range(self.size)]
        self._threads.append(threading.Thread(target=self._dispatch, daemon=True,
                                              name="upgradebot-dispatch"))
        for thread in self._threads:
            thread.start()

    def wake(self, *, housekeeping: bool = False) -> None:
        """Look for due work now (and start or expire waiting runs, if asked)."""
        if housekeeping:
            self._housekeep.set()
        self._wake.set()

    def stop(self, timeout_s: float) -> bool:
        """Claim nothing more, let visits finish until the timeout; True if all threads ended."""
        self.worker.stop()
        if event.contains(self.worker.sessions, "after_commit", self._after_commit):
            event.remove(self.worker.sessions, "after_commit", self._after_commit)
        for _ in range(self.size):
            self._queue.put(None)
        self._wake.set()
        until = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, until - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    @property
    def in_flight(self) -> int:
        """Visits claimed and not yet recorded."""
        with self._guard:
            return self._in_flight

    # -- threads ----------------------------------------------------------------------------

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(WAKE_WORKER, False):
            self._wake.set()

    def _visitor(self) -> None:
        while True:
            visit = self._queue.get()
            if visit is None:
                return
            try:
                self.worker.visit(visit)
            except Exception:  # the lease expires and the step is taken over; keep serving
                log.exception("recording the visit of step %s failed", visit.ctx.key)
            finally:
                with self._guard:
                    self._in_flight -= 1
                self._wake.set()

    def _dispatch(self) -> None:
        tick = self.worker.settings.timing.tick.total_seconds()
        house_at: datetime | None = None
        while not self.worker.stopping:
            self._wake.clear()
            self.passes += 1
            wait = tick
            try:
                now = self.worker.clock.now()
                if self._housekeep.is_set() or house_at is None or now >= house_at:
                    self._housekeep.clear()
                    self.worker.housekeeping()
                    house_at = self._next_housekeeping(now)
                free = self.size - self.in_flight
                claimed = self.worker.claim(free)
                with self._guard:
                    self._in_flight += len(claimed)
                for visit in claimed:
                    self._queue.put(visit)
                if claimed and len(claimed) == free:
                    continue  # more may be due: claim again once a visitor is free
                wait = self._seconds_to_next(now, house_at, tick)
            except Exception:  # the database may be down: keep trying, at the tick's pace
                log.exception("worker pass failed; trying again in %.1f s", tick)
            self._wake.wait(wait)

    def _next_housekeeping(self, now: datetime) -> datetime:
        with unit_of_work(self.worker.sessions) as session:
            moments = [m for m in wake_moments(session).values() if m > now]
        return min([*moments, now + HOUSEKEEPING_EVERY])

    def _seconds_to_next(self, now: datetime, house_at: datetime | None, cap: float) -> float:
        with unit_of_work(self.worker.sessions) as session:
            due = repo.next_step_moment(session=session, now=now)
        moments = [m for m in (due, house_at) if m is not None]
        if not moments:
            return cap
        return max(0.0, min(cap, (min(moments) - now).total_seconds()))
