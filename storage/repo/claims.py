"""Claiming steps under leases, so that several workers sharing one database never run one twice.

A claim costs the same whatever the number of runs: one indexed query finds the due steps of
running runs across every run, ordered by due time, and only the steps taken are locked
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, the database write lock on SQLite). The run-level rules
(dependencies, install slots) are checked for those candidates only. A pending step whose
dependencies are not done is parked (its `next_check_at` set to `PARKED`) so that later claims
never look at it again; one whose install or join slot is taken waits for a later check.
Finishing a step makes the steps of its run that may now start claimable at once. A candidate
that would take an install slot locks its run first, so two workers never both take the last
slot. A claim is a compare-and-set on the step's (claimed_by, claimed_until); every claim is
logged in `step_claims`, with the worker whose expired lease it took over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from bot.engine.slots import SlotView, may_start, slots_held
from bot.engine.states import CLAIMABLE_STEP, DONE_STEP, RunStatus, StepStatus
from storage.db import SQLITE_WRITE_LOCK
from storage.models import Run, Step, StepClaim
from storage.repo._shared import table

_NO_LIMITS: Mapping[str, int] = MappingProxyType({})
# A pending step waiting for its dependencies: far enough never to be due, never shown.
PARKED = datetime(3000, 1, 1, tzinfo=UTC)
_UNPARKED = "upgradebot_unparked"  # session info: steps whose dependants this transaction freed
_ROUNDS = 3  # candidate reads per claim, for those the run rules hold back

# The statements of every claim and release, built once: a statement object keeps its cache
# key, so the claim loop never pays for building and keying the same SQL again.
_steps, _claims = table(Step), table(StepClaim)
_TAKE = (
    update(_steps)
    # `attempts` grows with every claim: a step claimed, finished and released since we read
    # it (its claim columns empty again) is not taken a second time.
    .where(_steps.c.id == bindparam("sid"),
           _steps.c.claimed_by.is_not_distinct_from(bindparam("was_by")),
           _steps.c.claimed_until.is_not_distinct_from(
               bindparam("was_until", type_=_steps.c.claimed_until.type)),
           _steps.c.attempts == bindparam("was_attempts"),
           _steps.c.status == bindparam("was_status", type_=_steps.c.status.type))
    .values(claimed_by=bindparam("me"),
            claimed_until=bindparam("until", type_=_steps.c.claimed_until.type),
            attempts=_steps.c.attempts + 1))
_LOG_CLAIM = insert(_claims)
_CANDIDATES = (
    select(Step).join(Run, Run.id == Step.run_id).options(contains_eager(Step.run))
    .where(Step.status.in_(CLAIMABLE_STEP), Run.status.in_(bindparam("statuses", expanding=True)),
           or_(Step.next_check_at.is_(None), Step.next_check_at <= bindparam("now")),
           or_(Step.claimed_until.is_(None), Step.claimed_until <= bindparam("now")),
           Step.id.not_in(bindparam("exclude", expanding=True)))
    # NULL (never looked at) first, then by due time; the id keeps older runs first.
    .order_by(Step.next_check_at.is_not(None), Step.next_check_at, Step.id)
    .limit(bindparam("lim"))
    # PostgreSQL: lock what is read, skipping rows another worker is claiming, so that two
    # workers read different candidates instead of racing for the same first few. The run is
    # locked with its steps: a run's slots are decided by one worker at a time, holding all of
    # that run's candidates, never split between two that each hold a part.
    .with_for_update(of=(Step, Run), skip_locked=True)
    .execution_options(populate_existing=True, **{SQLITE_WRITE_LOCK: True}))
_RELEASE = (update(_steps)
            .where(_steps.c.id == bindparam("sid"), _steps.c.claimed_by == bindparam("me"))
            .values(claimed_by=None, claimed_until=None,
                    next_check_at=bindparam("next_at", type_=_steps.c.next_check_at.type)))
_LOG_RELEASE = (update(_claims)
                .where(_claims.c.step_id == bindparam("sid"),
                       _claims.c.worker_id == bindparam("me"), _claims.c.released_at.is_(None))
                .values(released_at=bindparam("at", type_=_claims.c.released_at.type)))
_VIEWS = select(_steps.c.run_id, _steps.c.key, _steps.c.kind, _steps.c.cluster, _steps.c.status,
                _steps.c.claimed_until).where(_steps.c.run_id.in_(bindparam("runs",
                                                                            expanding=True)))
_LOCK_RUN = (select(table(Run).c.id).where(table(Run).c.id == bindparam("rid"))
             .with_for_update(skip_locked=True).execution_options(**{SQLITE_WRITE_LOCK: True}))
_WAITING = select(_steps.c.id, _steps.c.deps, _steps.c.next_check_at).where(
    _steps.c.run_id == bindparam("rid"),
    or_(_steps.c.next_check_at == PARKED,
        and_(_steps.c.status == StepStatus.PENDING.value, _steps.c.next_check_at.is_not(None))))
_WAKE = (update(_steps).where(_steps.c.id.in_(bindparam("ids", expanding=True)))
         .values(next_check_at=None))
_DEFER = (update(_steps)
          .where(_steps.c.id == bindparam("sid"), _steps.c.status == StepStatus.PENDING.value)
          .values(next_check_at=bindparam("until", type_=_steps.c.next_check_at.type)))


class LeaseLost(RuntimeError):
    """The worker no longer holds the step it tried to release: another worker took it over."""


def _leased(claimed_until: datetime | None, now: datetime) -> bool:
    return claimed_until is not None and claimed_until > now


def _candidates(session: Session, now: datetime, statuses: tuple[RunStatus | str, ...],
                limit: int, exclude: Iterable[int] = ()) -> list[Step]:
    """The due, unleased steps of runs in `statuses`, earliest due first, locked, with their run."""
    return list(session.scalars(_CANDIDATES, {"statuses": statuses, "now": now, "lim": limit,
                                              "exclude": tuple(exclude)}).unique())


def _views(session: Session, run_ids: Iterable[int], now: datetime) -> dict[int, list[SlotView]]:
    """What the run rules need of every step of these runs (light columns, no objects)."""
    run_ids = tuple(run_ids)
    if not run_ids:
        return {}
    rows = session.execute(_VIEWS, {"runs": run_ids}).all()
    views: dict[int, list[SlotView]] = defaultdict(list)
    for run_id, key, kind, cluster, status, until in rows:
        views[run_id].append(SlotView(key, kind, cluster, StepStatus(status),
                                      _leased(until, now)))
    return views


def _lock_run(session: Session, run_id: int) -> bool:
    """Lock a run row, skipping it if another worker holds it (it is deciding a slot)."""
    return session.execute(_LOCK_RUN, {"rid": run_id}).scalar() is not None


def _take(session: Session, step: Step, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """Claim one step if nobody changed its claim since we read it (compare-and-set).

    The candidate's row is already locked (PostgreSQL) or the database is (SQLite); the
    compare-and-set is the last word all the same.
    """
    previous = step.claimed_by  # still set only when its lease expired without a release
    result = session.execute(_TAKE, {
        "sid": step.id, "was_by": previous, "was_until": step.claimed_until,
        "was_attempts": step.attempts, "was_status": step.status, "me": worker_id,
        "until": now + lease})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    # The claim log row, written with the claim (a plain insert: no object to flush).
    session.execute(_LOG_CLAIM, {
        "step_id": step.id, "run_id": step.run_id, "worker_id": worker_id, "claimed_at": now,
        "lease_until": now + lease, "took_over_from": previous})
    # What the update wrote, without reading the row back.
    for name, value in (("claimed_by", worker_id), ("claimed_until", now + lease),
                        ("attempts", step.attempts + 1)):
        set_committed_value(step, name, value)
    return True


def claim_due_steps(
    *, session: Session, worker_id: str, now: datetime, lease: timedelta, limit: int = 1,
    kind_limits: Mapping[str, int] = _NO_LIMITS,
    run_statuses: Iterable[RunStatus | str] = (RunStatus.RUNNING,),
    slot_recheck: timedelta = timedelta(seconds=30),
) -> list[Step]:
    """Claim up to `limit` due steps across all runs, earliest due first, under leases.

    The claimed rows stay locked until the caller's transaction ends: commit the claim before
    doing the steps' work.
    """
    statuses = tuple(run_statuses)
    taken: list[Step] = []
    seen: set[int] = set()
    # Read (and on PostgreSQL lock) only as many candidates as are wanted: rows read and not
    # taken would stay locked against other workers until this transaction ends. The few that
    # the run rules hold back are made up for in another round.
    for _ in range(_ROUNDS):
        want = limit - len(taken)
        found = _candidates(session, now, statuses, want, exclude=seen)
        seen.update(s.id for s in found)
        taken += _take_allowed(session, found, worker_id=worker_id, now=now, lease=lease,
                               kind_limits=kind_limits, slot_recheck=slot_recheck)
        if len(taken) >= limit or len(found) < want:
            break
    return taken


def _take_allowed(session: Session, found: list[Step], *, worker_id: str, now: datetime,
                  lease: timedelta, kind_limits: Mapping[str, int],
                  slot_recheck: timedelta) -> list[Step]:
    """Take the candidates their runs' rules allow; park those whose dependencies are not done."""
    # Only a step about to start needs its run's rules (dependencies, slots); a step already
    # under way (a poll) is simply due again.
    views = _views(session, {s.run_id for s in found if s.status == StepStatus.PENDING}, now)
    taken: list[Step] = []
    for step in found:
        if step.status != StepStatus.PENDING:
            if _take(session, step, worker_id, now, lease):
                taken.append(step)
            continue
        run_views = views[step.run_id]
        finished = {v.key for v in run_views if v.status in DONE_STEP}
        if not set(step.deps or ()) <= finished:
            _park(session, step)
            continue
        mine = next(v for v in run_views if v.key == step.key)
        if step.kind in kind_limits:
            # The slot count must not change under us: hold the run while deciding.
            if not _lock_run(session, step.run_id):
                continue
            run_views = views[step.run_id] = _views(session, (step.run_id,), now)[step.run_id]
            mine = next(v for v in run_views if v.key == step.key)
            if not may_start(mine, slots_held(run_views), kind_limits):
                # Looked at again when a step of its run finishes (a slot frees only then),
                # or after `slot_recheck` should that finish race with this claim; meanwhile
                # a queue of waiting installs or joins never hides a due poll from claims.
                _defer(session, step, now + slot_recheck)
                continue
        if _take(session, step, worker_id, now, lease):
            taken.append(step)
            run_views[run_views.index(mine)] = SlotView(mine.key, mine.kind, mine.cluster,
                                                        mine.status, True)
    return taken


def claim_next_step(
    *, session: Session, worker_id: str, now: datetime, lease: timedelta,
    kind_limits: Mapping[str, int] = _NO_LIMITS,
    run_statuses: Iterable[RunStatus | str] = (RunStatus.RUNNING,),
) -> Step | None:
    """Claim the one step due first (see `claim_due_steps`), or None."""
    taken = claim_due_steps(session=session, worker_id=worker_id, now=now, lease=lease,
                            kind_limits=kind_limits, run_statuses=run_statuses)
    return taken[0] if taken else None


def _park(session: Session, step: Step) -> None:
    """Keep a pending step whose dependencies are not done out of later claims.

    The claim that read it holds its row (see `_candidates`). A dependency finishing while this
    transaction is open may miss it: `unpark_ready` repairs that.
    """
    _defer(session, step, PARKED)


def _defer(session: Session, step: Step, until: datetime) -> None:
    """Look at a pending step again at `until` (PARKED: when a dependency finishes)."""
    session.execute(_DEFER, {"sid": step.id, "until": until})
    set_committed_value(step, "next_check_at", until)


def unpark_ready(*, session: Session) -> int:
    """Un-park the parked steps of running runs whose dependencies are all done; return how many.

    The safety net for a park that raced with a step of its run finishing (a step still
    waiting for a slot is parked again by the next claim); the worker runs it every
    housekeeping pass (it reads only parked steps and their runs' step statuses).
    """
    parked = session.execute(
        select(Step.id, Step.run_id, Step.deps).join(Run, Run.id == Step.run_id)
        .where(Run.status == RunStatus.RUNNING, Step.next_check_at == PARKED)).all()
    if not parked:
        return 0
    done: dict[int, set[str]] = defaultdict(set)
    for run_id, key in session.execute(
            select(Step.run_id, Step.key).where(Step.run_id.in_({r for _, r, _ in parked}),
                                                Step.status.in_(DONE_STEP))):
        done[run_id].add(key)
    ready = [sid for sid, run_id, deps in parked if set(deps or ()) <= done[run_id]]
    if ready:
        session.execute(update(Step).where(Step.id.in_(ready), Step.next_check_at == PARKED)
                        .values(next_check_at=None)
                        .execution_options(synchronize_session=False))
    return len(ready)


def unpark_dependents(*, session: Session, step: Step) -> None:
    """Make claimable again the steps of a finished step's run that may now start.

    Its parked dependants (a claim parks one again if another dependency is still not done:
    several dependencies finishing in concurrent transactions each see the others unfinished,
    so none may wait for "all done" here), and the steps waiting for an install or join slot,
    which a finished step may have freed. Once per step and transaction: the state machine and
    the release both ask.
    """
    transaction = session.get_transaction()
    seen: tuple[object, set[int]] | None = session.info.get(_UNPARKED)
    if seen is None or seen[0] is not transaction:
        seen = session.info[_UNPARKED] = (transaction, set())
    if step.id in seen[1]:
        return
    seen[1].add(step.id)
    waiting = session.execute(_WAITING, {"rid": step.run_id}).all()
    ids = [sid for sid, deps, at in waiting if at != PARKED or step.key in (deps or ())]
    if ids:
        session.execute(_WAKE, {"ids": ids})


def next_step_moment(*, session: Session, now: datetime) -> datetime | None:
    """The earliest moment after now when a claimable step of a running run becomes due.

    Its next check, or the end of another worker's lease on it; parked steps wait for an
    event (a finished step), not for a moment.
    """
    due = (select(func.min(Step.next_check_at)).join(Run, Run.id == Step.run_id)
           .where(Run.status == RunStatus.RUNNING, Step.status.in_(CLAIMABLE_STEP),
                  Step.next_check_at > now, Step.next_check_at < PARKED))
    lease = (select(func.min(Step.claimed_until)).join(Run, Run.id == Step.run_id)
             .where(Run.status == RunStatus.RUNNING, Step.status.in_(CLAIMABLE_STEP),
                    Step.claimed_until > now,
                    and_(or_(Step.next_check_at.is_(None), Step.next_check_at < PARKED))))
    # One round trip: the dispatcher asks after every pass.
    row = session.execute(select(due.scalar_subquery(), lease.scalar_subquery())).one()
    moments = [m for m in row if m is not None]
    return min(moments) if moments else None


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

    A finished step un-parks its dependents. After LeaseLost the caller should roll back:
    another worker owns the step now.
    """
    session.flush()  # the caller's changes to the step go first
    result = session.execute(_RELEASE, {"sid": step.id, "me": worker_id,
                                        "next_at": next_check_at})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"step {step.id} ({step.key}) is not held by {worker_id}")
    for name, value in (("claimed_by", None), ("claimed_until", None),
                        ("next_check_at", next_check_at)):
        set_committed_value(step, name, value)  # what the update wrote, without a read
    log_release(session=session, step_id=step.id, worker_id=worker_id, now=now)
    if step.status in DONE_STEP:
        unpark_dependents(session=session, step=step)


def log_release(*, session: Session, step_id: int, worker_id: str, now: datetime) -> None:
    """Close this worker's open claim of a step in the claim log (the step was given back)."""
    session.execute(_LOG_RELEASE, {"sid": step_id, "me": worker_id, "at": now})


def claims_of(*, session: Session, step_id: int) -> list[StepClaim]:
    """Return the claim log of one step, oldest first."""
    return list(session.scalars(
        select(StepClaim).where(StepClaim.step_id == step_id).order_by(StepClaim.id)
    ))
