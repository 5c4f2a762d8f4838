"""The worker: claims due steps from the database with a lease and visits their clusters.

The database is the truth. A visit has three parts: load (a short transaction that claims the
step and copies what the handler needs), act (the handler talks to the clusters with no
transaction open), and record (a short transaction that checks the lease is still ours and stores
the outcome). A worker that dies mid-visit leaves a lease that expires; another worker takes the
step over and, because every handler reads the cluster before acting, nothing is done twice.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import logs, metrics
from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.dma.errors import DmaBadResponse, DmaConflict, DmaError, DmaNotReachable
from bot.engine.planner import StepKind
from bot.engine.states import CLAIMABLE_STEP, RunStatus, StepEvent, StepStatus
from bot.runs.escalations import renotify_due, renotify_moments
from bot.runs.outcome import Outcome
from bot.runs.outcomes import apply_outcome
from bot.runs.plans import plan_of
from bot.runs.transitions import transition_step
from bot.runs.waiting import ask_overrun, housekeeping, overrun_needed, wake_moments
from bot.worker.context import StepContext
from bot.worker.packet import with_packet
from bot.worker.steps import HANDLERS
from storage import repo
from storage.db import unit_of_work
from storage.models import Run, Step

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class _Visit:
    step_id: int
    run_id: int
    ctx: StepContext


class Worker:
    """Executes the steps of running runs, one claimed step at a time."""

    def __init__(self, *, session_factory: sessionmaker[Session], settings: Settings,
                 clock: Clock, clients: Callable[[str], DmaClient],
                 worker_id: str | None = None, progress: Progress | None = None) -> None:
        self.sessions = session_factory
        self.settings = settings
        self.clock = clock
        self.clients = clients
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.progress = progress or (lambda line: log.info("%s", line))
        self._stopping = threading.Event()
        self._visiting: str | None = None

    @property
    def actor(self) -> str:
        """How this worker appears in the audit trail."""
        return f"worker:{self.worker_id}"

    @property
    def visiting(self) -> str | None:
        """The step under way, as "R1 install:dallas" (None between visits)."""
        return self._visiting

    def stop(self) -> None:
        """Claim nothing more; the visit under way finishes (or is abandoned with its lease)."""
        self._stopping.set()

    def tick(self, max_visits: int = 100) -> int:
        """Start due runs, then visit due steps until none is left; return the visits made."""
        if self._stopping.is_set():
            return 0
        housekeeping(self.sessions, self.clock, self.actor)
        with unit_of_work(self.sessions) as session:
            renotify_due(session, self.clock.now(), self.settings)
        visits = 0
        while visits < max_visits and not self._stopping.is_set():
            started = time.perf_counter()
            visit = self._claim()
            metrics.claim_latency(time.perf_counter() - started)
            if visit is None:
                break
            self._visiting = f"{visit.ctx.run_name} {visit.ctx.key}"
            try:
                with logs.context(run=visit.ctx.run_name, step=visit.ctx.key,
                                  cluster=visit.ctx.cluster, actor=self.actor):
                    self._record(visit, self._act(visit))
            finally:
                self._visiting = None
            visits += 1
        return visits

    def next_due(self) -> datetime | None:
        """Return the next moment after now when a step or a waiting run needs this worker.

        The earliest `next_check_at` (or lease end) of a claimable step of a running run, a
        scheduled run's window start, or an unapproved plan's deadline; None when nothing is due
        on its own. A driver in virtual time jumps straight there instead of stepping.
        """
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            moments = [*_step_moments(session), *wake_moments(session).values(),
                       *renotify_moments(session, self.settings.escalation.renotify_every)]
        return min((m for m in moments if m > now), default=None)

    # -- load -------------------------------------------------------------------------------

    def _claim(self) -> _Visit | None:
        now = self.clock.now()
        timing = self.settings.timing
        with unit_of_work(self.sessions) as session:
            step = repo.claim_next_step(
                session=session, worker_id=self.worker_id, now=now, lease=timing.lease,
                kind_limits={StepKind.INSTALL: timing.max_parallel_installs})
            if step is None:
                return None
            run = step.run
            if step.status == StepStatus.PENDING:
                if step.safe_point and overrun_needed(session, run, now, self.settings):
                    ask_overrun(session, run, now, self.actor, self.settings)
                    repo.release_step(session=session, step=step, worker_id=self.worker_id,
                                      now=now, next_check_at=None)
                    return None
                transition_step(session, step, StepEvent.START, now=now, actor=self.actor)
                self.progress(f"{run.name} {step.title}")
            ctx = self._context(session, run, step, now)
            return _Visit(step.id, run.id, ctx)

    def _context(self, session: Session, run: Run, step: Step, now: datetime) -> StepContext:
        plan = plan_of(run)
        steps = repo.steps_of(session=session, run_id=run.id)
        package = self.settings.packages.get(run.to_version)
        return StepContext(
            now=now, run_name=run.name, to_version=run.to_version, key=step.key, kind=step.kind,
            cluster=step.cluster, params=dict(step.params or {}), data=dict(step.data or {}),
            phase=step.phase, estimate_s=step.estimate_s, started_at=step.started_at, plan=plan,
            timing=self.settings.timing,
            inventory={c.name: c for c in self.settings.all_clusters()}, package=package,
            client_for=self.clients, snapshot=repo.territory_snapshot(session=session,
                                                                      run_id=run.id),
            step_data={s.key: dict(s.data or {}) for s in steps})

    # -- act --------------------------------------------------------------------------------

    def _act(self, visit: _Visit) -> Outcome:
        ctx = visit.ctx
        handler = HANDLERS.get(StepKind(ctx.kind))
        if handler is None:
            return Outcome.fail(f"no handler for step kind {ctx.kind!r}")
        try:
            outcome = handler(ctx)
        except DmaNotReachable as exc:
            return self._unreachable(ctx, exc)
        except DmaConflict as exc:
            return Outcome.fail(f"{ctx.cluster or ctx.plan.target} refused "
                                f"'{ctx.key}': {exc}", data={"refused": str(exc)})
        except DmaBadResponse as exc:
            return Outcome.fail(f"unexpected answer from {ctx.cluster or 'a cluster'} during "
                                f"'{ctx.key}': {exc}")
        except DmaError as exc:
            return Outcome.fail(f"{ctx.key}: {exc}")
        except Exception as exc:  # a bug must stop the run visibly, not kill the worker thread
            incident = uuid.uuid4().hex[:8]
            log.exception("step %s failed unexpectedly (incident %s)", ctx.key, incident)
            return Outcome.fail(f"internal error in step {ctx.key} (incident {incident}: "
                                f"{type(exc).__name__})")
        if outcome.kind == "escalate":  # what Polycom will ask first, read while it is fresh
            outcome = with_packet(ctx, outcome)
        if "unreachable_since" in ctx.data and "unreachable_since" not in outcome.data:
            # The cluster answered again: forget when it stopped answering.
            outcome = replace(outcome, data={**outcome.data, "unreachable_since": None})
        return outcome

    def _unreachable(self, ctx: StepContext, exc: DmaNotReachable) -> Outcome:
        """A cluster that does not answer is waited for, up to a bound, then the run stops."""
        since = ctx.data.get("unreachable_since") or ctx.stamp()
        waited = (ctx.now - datetime.fromisoformat(since)).total_seconds()
        limit = max(10 * ctx.poll_s, ctx.seconds(ctx.timing.login_grace) * 2)
        if waited > limit:
            return Outcome.fail(f"{exc} — not reachable for {int(waited // 60)} min during "
                                f"'{ctx.key}'")
        return Outcome.wait(ctx.poll_s, f"{ctx.cluster or 'cluster'} not reachable "
                            f"({exc.reason}); will look again",
                            data={"unreachable_since": since})

    # -- record -----------------------------------------------------------------------------

    def _record(self, visit: _Visit, outcome: Outcome) -> None:
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            step = session.get(Step, visit.step_id, with_for_update=False)
            assert step is not None
            if step.claimed_by != self.worker_id:
                log.warning("lease on %s lost to %s; dropping this visit's outcome",
                            step.key, step.claimed_by)
                return
            run = step.run
            step.data = {k: v for k, v in {**(step.data or {}), **outcome.data}.items()
                         if v is not None}
            if outcome.phase is not None:
                step.phase = outcome.phase
            if outcome.snapshot is not None:
                repo.save_territory_snapshot(session=session, run_id=run.id,
                                             supercluster=run.target,
                                             territories=outcome.snapshot, at=now)
            apply_outcome(session, run, step, outcome, now=now, actor=self.actor,
                                    settings=self.settings, progress=self.progress)
            next_check = (now + timedelta(seconds=outcome.wait_s)
                          if outcome.kind == "wait" and outcome.wait_s is not None else None)
            repo.release_step(session=session, step=step, worker_id=self.worker_id, now=now,
                              next_check_at=next_check)



def _step_moments(session: Session) -> list[datetime]:
    """When each claimable step of a running run may be claimed next (None: now)."""
    rows = session.execute(
        select(Step.next_check_at, Step.claimed_until).join(Run, Step.run_id == Run.id)
        .where(Run.status == RunStatus.RUNNING, Step.status.in_(CLAIMABLE_STEP))).all()
    return [max(m for m in row if m is not None) for row in rows if any(row)]
