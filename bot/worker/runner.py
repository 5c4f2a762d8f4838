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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from bot import logs, metrics
from bot.clock import Clock
from bot.config import Settings
from bot.dma import journal
from bot.dma.client import DmaClient
from bot.dma.errors import DmaBadResponse, DmaConflict, DmaError, DmaNotReachable
from bot.engine.planner import StepKind
from bot.engine.slots import step_limits
from bot.engine.states import StepEvent, StepStatus
from bot.runs.escalations import renotify_due, renotify_moments
from bot.runs.outcome import Outcome
from bot.runs.outcomes import apply_outcome, plain_wait
from bot.runs.plans import plan_of
from bot.runs.posting import queue_board
from bot.runs.transitions import transition_step
from bot.runs.waiting import ask_overrun, housekeeping, overrun_needed, wake_moments
from bot.worker.context import StepContext
from bot.worker.packet import with_packet
from bot.worker.reverify import reverify_due
from bot.worker.steps import HANDLERS, NEEDS_SNAPSHOT, NEEDS_STEP_DATA
from storage import repo
from storage.db import unit_of_work
from storage.models import Run, Step

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
_STEP_AND_RUN = (select(Step).options(joinedload(Step.run))  # built once, keyed once
                 .where(Step.id == bindparam("sid")))


@dataclass
class Visit:
    """One claimed step and the snapshot its handler works from."""

    step_id: int
    run_id: int
    ctx: StepContext
    channel: str | None  # the run's, where its board is


class Worker:
    """Executes the steps of running runs: claims, visits, records."""

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
        self._guard = threading.Lock()
        self._visiting: dict[int, str] = {}
        self._inventory = {c.name: c for c in settings.all_clusters()}

    @property
    def actor(self) -> str:
        """How this worker appears in the audit trail."""
        return f"worker:{self.worker_id}"

    @property
    def visiting(self) -> str | None:
        """The steps under way, as "R1 install:dallas, R2 verify:lab" (None between visits)."""
        with self._guard:
            return ", ".join(sorted(self._visiting.values())) or None

    @property
    def concurrency(self) -> int:
        """How many visits this worker makes at once when served by a `VisitLoop`."""
        return self.settings.worker.concurrency

    def stop(self) -> None:
        """Claim nothing more; the visits under way finish (or are abandoned with their lease)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """True once `stop` was called."""
        return self._stopping.is_set()

    def tick(self, max_visits: int = 100) -> int:
        """Start due runs, then visit due steps one after another until none is left.

        The serial pass that drivers in virtual time use; a serving process runs `VisitLoop`,
        which visits `worker.concurrency` steps at once.
        """
        if self._stopping.is_set():
            return 0
        self.housekeeping()
        visits = 0
        while visits < max_visits and not self._stopping.is_set():
            claimed = self.claim(1)
            if not claimed:
                break
            self.visit(claimed[0])
            visits += 1
        return visits

    def housekeeping(self) -> None:
        """Start, schedule or expire waiting runs; un-park steps whose dependencies are done."""
        housekeeping(self.sessions, self.clock, self.actor)
        reverify_due(self.sessions, self.settings, self.clients, self.clock, self.actor)
        with unit_of_work(self.sessions) as session:
            # Escalations nobody acknowledged: mention the on-call group again when due.
            renotify_due(session, self.clock.now(), self.settings)
        with unit_of_work(self.sessions) as session:
            if count := repo.unpark_ready(session=session):
                log.debug("un-parked %d steps that may start", count)

    def visit(self, visit: Visit) -> None:
        """Act on the cluster with no transaction open, then record the outcome."""
        with self._guard:
            self._visiting[visit.step_id] = f"{visit.ctx.run_name} {visit.ctx.key}"
        try:
            with logs.context(run=visit.ctx.run_name, step=visit.ctx.key,
                              cluster=visit.ctx.cluster, actor=self.actor):
                with journal.recording() as requests:
                    outcome = self._act(visit)
                self._record(visit, outcome, requests)
        finally:
            with self._guard:
                self._visiting.pop(visit.step_id, None)

    def next_due(self) -> datetime | None:
        """Return the next moment after now when a step or a waiting run needs this worker.

        The earliest `next_check_at` (or lease end) of a claimable step of a running run, a
        scheduled run's window start, or an unapproved plan's deadline; None when nothing is due
        on its own. A driver in virtual time jumps straight there instead of stepping.
        """
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            moments = [m for m in (repo.next_step_moment(session=session, now=now),) if m]
            moments += wake_moments(session).values()
            moments += [m for m in [repo.next_reverification(session=session)] if m]
            moments += renotify_moments(session, self.settings.escalation.renotify_every)
        return min((m for m in moments if m > now), default=None)

    # -- load -------------------------------------------------------------------------------

    def claim(self, limit: int) -> list[Visit]:
        """Claim up to `limit` due steps in one transaction; return what each visit needs."""
        if limit < 1 or self._stopping.is_set():
            return []
        now = self.clock.now()
        timing = self.settings.timing
        visits: list[Visit] = []
        with unit_of_work(self.sessions) as session:
            started = time.perf_counter()  # claim latency: the query, whoever calls (tick or loop)
            steps = repo.claim_due_steps(
                session=session, worker_id=self.worker_id, now=now, lease=timing.lease,
                limit=limit, slot_recheck=timing.poll_interval,
                kind_limits={k.value: n for k, n in step_limits(
                    timing.max_parallel_installs).items()})
            metrics.claim_latency(time.perf_counter() - started)
            known = _step_data(session, {s.run_id for s in steps if s.kind in NEEDS_STEP_DATA})
            for step in steps:
                run = step.run
                if step.status == StepStatus.PENDING:
                    if step.safe_point and overrun_needed(session, run, now, self.settings):
                        ask_overrun(session, run, now, self.actor, self.settings)
                        repo.release_step(session=session, step=step, worker_id=self.worker_id,
                                          now=now, next_check_at=None)
                        continue
                    transition_step(session, step, StepEvent.START, now=now, actor=self.actor)
                    self.progress(f"{run.name} {step.title}")
                data = known.get(run.id) or LazyStepData(self.sessions, run.id)
                visits.append(Visit(step.id, run.id,
                                    self._context(session, run, step, now, data), run.channel))
        return visits

    def _context(self, session: Session, run: Run, step: Step, now: datetime,
                 step_data: Mapping[str, dict[str, Any]]) -> StepContext:
        plan = plan_of(run)
        package = self.settings.packages.get(run.to_version)
        return StepContext(
            now=now, run_name=run.name, to_version=run.to_version, key=step.key, kind=step.kind,
            cluster=step.cluster, params=dict(step.params or {}), data=dict(step.data or {}),
            phase=step.phase, estimate_s=step.estimate_s, started_at=step.started_at, plan=plan,
            timing=self.settings.timing, inventory=self._inventory, package=package,
            client_for=self.clients,
            snapshot=(repo.territory_snapshot(session=session, run_id=run.id)
                      if step.kind in NEEDS_SNAPSHOT else []),
            step_data=step_data)

    # -- act --------------------------------------------------------------------------------

    def _act(self, visit: Visit) -> Outcome:
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

    def _record(self, visit: Visit, outcome: Outcome,
                requests: Sequence[journal.Exchange] = ()) -> None:
        now = self.clock.now()
        next_check = (now + timedelta(seconds=outcome.wait_s)
                      if outcome.kind == "wait" and outcome.wait_s is not None else None)
        plain = plain_wait(visit.ctx.data, outcome, now)
        with unit_of_work(self.sessions) as session:
            # Kept whatever becomes of the lease: these requests reached the cluster.
            repo.add_dma_requests(session=session, run_id=visit.run_id, step_id=visit.step_id,
                                  entries=[r.to_json() for r in requests], at=visit.ctx.now)
            if plain is not None:  # a poll that changes only the step's data: the lean way
                data, board = plain
                kept = repo.record_poll(session=session, step_id=visit.step_id,
                                        worker_id=self.worker_id, seen=visit.ctx.data,
                                        data=data, phase=outcome.phase, now=now,
                                        next_check_at=next_check)
                if kept is repo.PollRecord.LOST:
                    log.warning("lease on %s lost; dropping this visit's outcome",
                                visit.ctx.key)
                elif kept is repo.PollRecord.KEPT and board:
                    queue_board(session, visit.run_id, visit.channel, now)
                if kept is not repo.PollRecord.CHANGED:
                    return
            # The step and its run in one read.
            step = session.scalars(_STEP_AND_RUN, {"sid": visit.step_id}).one()
            if step.claimed_by != self.worker_id:
                log.warning("lease on %s lost to %s; dropping this visit's outcome",
                            step.key, step.claimed_by)
                return
            run = step.run
            if outcome.snapshot is not None:
                repo.save_territory_snapshot(session=session, run_id=run.id,
                                             supercluster=run.target,
                                             territories=outcome.snapshot, at=now)
            apply_outcome(session, run, step, outcome, now=now, actor=self.actor,
                          settings=self.settings, progress=self.progress)
            repo.release_step(session=session, step=step, worker_id=self.worker_id, now=now,
                              next_check_at=next_check)



def _step_data(session: Session, run_ids: set[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Every step's stored data by run and key (one light query for all, no step objects)."""
    found: dict[int, dict[str, dict[str, Any]]] = {}
    if run_ids:
        for run_id, key, data in session.execute(
                select(Step.run_id, Step.key, Step.data).where(Step.run_id.in_(run_ids))):
            found.setdefault(run_id, {})[key] = dict(data or {})
    return found


class LazyStepData(Mapping[str, dict[str, Any]]):
    """The run's step data, read on first use: most handlers never look at other steps."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int) -> None:
        self._sessions, self._run_id = sessions, run_id
        self._data: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            with unit_of_work(self._sessions) as session:
                self._data = _step_data(session, {self._run_id}).get(self._run_id, {})
        return self._data

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())
