"""Claiming steps under leases, so that several workers sharing one database never run one twice.

A claim is a compare-and-set on the step's (claimed_by, claimed_until); the run is locked while
its steps are chosen (`SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on
SQLite). Every claim is logged in `step_claims`, with the worker whose expired lease it took over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.engine.slots import SlotView, may_start, slots_held
from bot.engine.states import CLAIMABLE_STEP, DONE_STEP, RunStatus, StepStatus
from storage.db import SQLITE_WRITE_LOCK
from storage.models import Run, Step, StepClaim
from storage.repo._shared import same

_NO_LIMITS: Mapping[str, int] = MappingProxyType({})


class LeaseLost(RuntimeError):
    """The worker no longer holds the step it tried to release: another worker took it over."""


def _leased(step: Step, now: datetime) -> bool:
    return step.claimed_until is not None and step.claimed_until > now


def _lock_run(session: Session, run_id: int, statuses: tuple[RunStatus | str, ...]) -> bool:
    """Lock a run row still in `statuses`, skipping it if another process holds the lock."""
    query = (
        select(Run.id)
        .where(Run.id == run_id, Run.status.in_(statuses))
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite takes its database write lock
        .execution_options(**{SQLITE_WRITE_LOCK: True})
    )
    return session.scalar(query) is not None


def _claimable(
    session: Session, run_id: int, now: datetime, kind_limits: Mapping[str, int]
) -> list[Step]:
    """Return the steps of a locked run that may be claimed now, lowest seq first."""
    # populate_existing: a long-lived session must see other workers' claims, not its cache.
    steps = list(session.scalars(
        select(Step).where(Step.run_id == run_id).order_by(Step.seq)
        .execution_options(populate_existing=True)
    ))
    finished = {s.key for s in steps if s.status in DONE_STEP}
    views = {s.id: SlotView(s.key, s.kind, s.cluster, StepStatus(s.status), _leased(s, now))
             for s in steps}
    held = slots_held(views.values())
    return [
        s for s in steps
        if s.status in CLAIMABLE_STEP
        and not _leased(s, now)
        and (s.next_check_at is None or s.next_check_at <= now)
        and set(s.deps) <= finished
        and may_start(views[s.id], held, kind_limits)
    ]


def _take(session: Session, step: Step, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """Claim one step if nobody changed its claim since we read it (compare-and-set)."""
    previous = step.claimed_by  # still set only when its lease expired without a release
    result = session.execute(
        update(Step)
        .where(Step.id == step.id, same(Step.claimed_by, previous),
               same(Step.claimed_until, step.claimed_until))
        .values(claimed_by=worker_id, claimed_until=now + lease, attempts=Step.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(StepClaim(step_id=step.id, run_id=step.run_id, worker_id=worker_id,
                          claimed_at=now, lease_until=now + lease, took_over_from=previous))
    session.flush()
    session.refresh(step)
    return True


def claim_next_step(
    *, session: Session, worker_id: str, now: datetime, lease: timedelta,
    kind_limits: Mapping[str, int] = _NO_LIMITS,
    run_statuses: Iterable[RunStatus | str] = (RunStatus.RUNNING,),
) -> Step | None:
    """Claim the next runnable step of the oldest run that has one, under a lease; or None.

    The run stays locked until the caller's transaction ends (other workers skip it meanwhile):
    commit the claim before doing the step's work.
    """
    statuses = tuple(run_statuses)
    run_ids = session.scalars(
        select(Run.id).where(Run.status.in_(statuses)).order_by(Run.id)
    ).all()
    for run_id in run_ids:
        if not _lock_run(session, run_id, statuses):
            continue
        for step in _claimable(session, run_id, now, kind_limits):
            if _take(session, step, worker_id, now, lease):
                return step
    return None


def renew_lease(
    *, session: Session, step_id: int, worker_id: str, now: datetime, lease: timedelta
) -> bool:
    """Extend this worker's lease on a step; False when it no longer holds the step."""
    until = now + lease
    result = session.execute(
        update(Step).where(Step.id == step_id, Step.claimed_by == worker_id)
        .values(claimed_until=until)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.execute(
        update(StepClaim)
        .where(StepClaim.step_id == step_id, StepClaim.worker_id == worker_id,
               StepClaim.released_at.is_(None))
        .values(lease_until=until)
    )
    return True


def release_step(
    *, session: Session, step: Step, worker_id: str, now: datetime,
    next_check_at: datetime | None,
) -> None:
    """Give a step back (with its status as the caller set it); raise LeaseLost if not held.

    After LeaseLost the caller should roll back: another worker owns the step now.
    """
    session.flush()  # the caller's changes to the step go first
    result = session.execute(
        update(Step).where(Step.id == step.id, Step.claimed_by == worker_id)
        .values(claimed_by=None, claimed_until=None, next_check_at=next_check_at)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"step {step.id} ({step.key}) is not held by {worker_id}")
    session.execute(
        update(StepClaim)
        .where(StepClaim.step_id == step.id, StepClaim.worker_id == worker_id,
               StepClaim.released_at.is_(None))
        .values(released_at=now)
    )


def claims_of(*, session: Session, step_id: int) -> list[StepClaim]:
    """Return the claim log of one step, oldest first."""
    return list(session.scalars(
        select(StepClaim).where(StepClaim.step_id == step_id).order_by(StepClaim.id)
    ))
