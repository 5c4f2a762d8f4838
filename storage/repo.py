"""Repository functions: each takes a keyword-only session, flushes, and never commits.

The caller (a Slack middleware, the worker, the CLI) owns the unit of work. Inserts that can race
with another process (event ids, outbox keys, approvals, snapshots) run in a SAVEPOINT, so that a
duplicate is reported as such and never breaks the caller's transaction.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.dma.models import Territory
from storage.db import SQLITE_WRITE_LOCK
from storage.models import (
    Approval,
    AuditEntry,
    Base,
    Escalation,
    OutboxMessage,
    Run,
    SlackEvent,
    Step,
    StepClaim,
    StepDuration,
    TerritorySnapshot,
)

CLAIMABLE = ("pending", "active")
FINISHED = frozenset({"done", "skipped"})
OUTBOX_KINDS = frozenset({"post", "update", "ephemeral"})
_RUN_REF = re.compile(r"[Rr]?(\d+)")
_NO_LIMITS: Mapping[str, int] = MappingProxyType({})
_R = TypeVar("_R", bound=Base)


class LeaseLost(RuntimeError):
    """The worker no longer holds the step it tried to release: another worker took it over."""


def _insert_or_find(session: Session, row: _R, find: Callable[[], _R | None]) -> _R | None:
    """Insert a row in a SAVEPOINT; on a unique clash return the row already there, else None.

    Any other integrity error (an unknown run id, say) is raised; the caller's transaction
    stays usable either way.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing
    return None


def _same(column: InstrumentedAttribute[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


# --- runs and steps -------------------------------------------------------------------------

def add_run(*, session: Session, **fields: Any) -> Run:
    """Insert a run; `updated_at` defaults to `created_at`."""
    fields.setdefault("updated_at", fields.get("created_at"))
    run = Run(**fields)
    session.add(run)
    session.flush()
    return run


def parse_run_ref(ref: str | int) -> int | None:
    """Return the run id named by 12, "12", "R12" or "r12", or None if it names no run."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref if ref > 0 else None
    match = _RUN_REF.fullmatch(str(ref).strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def get_run(*, session: Session, ref: str | int) -> Run | None:
    """Return the run named by `ref` (12, "12", "R12", "r12"), or None."""
    run_id = parse_run_ref(ref)
    return None if run_id is None else session.get(Run, run_id)


def list_runs(
    *, session: Session, target: str | None = None, statuses: Iterable[str] | None = None,
    limit: int = 50,
) -> list[Run]:
    """Return runs, newest first, optionally of one target and in some statuses."""
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if target is not None:
        query = query.where(Run.target == target)
    if statuses is not None:
        query = query.where(Run.status.in_(tuple(statuses)))
    return list(session.scalars(query))


def add_steps(*, session: Session, run: Run, steps: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Insert a run's steps from dicts of Step fields (seq, key, kind, cluster, deps, ...)."""
    if run.id is None:
        session.flush()
    rows = [Step(run_id=run.id, **dict(fields)) for fields in steps]
    session.add_all(rows)
    session.flush()
    return rows


def steps_of(*, session: Session, run_id: int) -> list[Step]:
    """Return a run's steps in plan order."""
    return list(session.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.seq)))


# --- claims ---------------------------------------------------------------------------------

def _leased(step: Step, now: datetime) -> bool:
    return step.claimed_until is not None and step.claimed_until > now


def _lock_run(session: Session, run_id: int, statuses: tuple[str, ...]) -> bool:
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
    finished = {s.key for s in steps if s.status in FINISHED}
    # A pending step claimed but not yet marked active already occupies its kind's slot.
    busy = Counter(s.kind for s in steps if s.status == "active" or _leased(s, now))
    return [
        s for s in steps
        if s.status in CLAIMABLE
        and not _leased(s, now)
        and (s.next_check_at is None or s.next_check_at <= now)
        and set(s.deps) <= finished
        and not (s.status == "pending" and s.kind in kind_limits
                 and busy[s.kind] >= kind_limits[s.kind])
    ]


def _take(session: Session, step: Step, worker_id: str, now: datetime, lease: timedelta) -> bool:
    """Claim one step if nobody changed its claim since we read it (compare-and-set)."""
    previous = step.claimed_by  # still set only when its lease expired without a release
    result = session.execute(
        update(Step)
        .where(Step.id == step.id, _same(Step.claimed_by, previous),
               _same(Step.claimed_until, step.claimed_until))
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
    kind_limits: Mapping[str, int] = _NO_LIMITS, run_statuses: Iterable[str] = ("running",),
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


# --- audit ----------------------------------------------------------------------------------

def audit(
    *, session: Session, at: datetime, actor: str, action: str, run_id: int | None = None,
    step_id: int | None = None, detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Record who did what (actor: a Slack user id, "worker:<id>", "cli" or "system")."""
    entry = AuditEntry(at=at, actor=actor, action=action, run_id=run_id, step_id=step_id,
                       detail=dict(detail or {}))
    session.add(entry)
    session.flush()
    return entry


def audit_trail(*, session: Session, run_id: int) -> list[AuditEntry]:
    """Return a run's audit entries in the order they happened."""
    return list(session.scalars(
        select(AuditEntry).where(AuditEntry.run_id == run_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    ))


# --- outbox and Slack events ----------------------------------------------------------------

def enqueue_message(
    *, session: Session, at: datetime, payload: Mapping[str, Any], channel: str | None,
    run_id: int | None = None, kind: str = "post", thread: bool = False, key: str | None = None,
) -> OutboxMessage:
    """Queue a Slack message; enqueuing the same key again returns the first one unchanged."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}; expected one of {sorted(OUTBOX_KINDS)}")
    if key is not None and (existing := _message_by_key(session, key)) is not None:
        return existing
    message = OutboxMessage(run_id=run_id, channel=channel, kind=kind, thread=thread, key=key,
                            payload=dict(payload), status="pending", attempts=0,
                            not_before=at, created_at=at)
    if key is None:
        session.add(message)
        session.flush()
        return message
    return _insert_or_find(session, message, lambda: _message_by_key(session, key)) or message


def _message_by_key(session: Session, key: str) -> OutboxMessage | None:
    return session.scalar(select(OutboxMessage).where(OutboxMessage.key == key))


def pending_messages(*, session: Session, now: datetime, limit: int = 50) -> list[OutboxMessage]:
    """Return the messages due for sending, in the order they were queued."""
    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.id).limit(limit)
    ))


def record_event_id(*, session: Session, event_id: str, kind: str, at: datetime) -> bool:
    """Remember a Slack event id; True the first time, False for a retry or a duplicate."""
    if session.get(SlackEvent, event_id) is not None:
        return False
    row = SlackEvent(event_id=event_id, kind=kind, received_at=at)
    return _insert_or_find(session, row, lambda: session.get(SlackEvent, event_id)) is None


def purge_event_ids(*, session: Session, before: datetime) -> int:
    """Forget event ids received before `before`; return how many were forgotten."""
    result = session.execute(delete(SlackEvent).where(SlackEvent.received_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- territories, durations, escalations ----------------------------------------------------

def save_territory_snapshot(
    *, session: Session, run_id: int, supercluster: str,
    territories: Sequence[Mapping[str, Any]], at: datetime,
) -> None:
    """Keep each territory's JSON as first seen in this run; later calls never overwrite it."""
    for data in territories:
        territory_id = Territory.from_json(data).territory_id
        def find(territory_id: str = territory_id) -> TerritorySnapshot | None:
            return session.scalar(select(TerritorySnapshot).where(
                TerritorySnapshot.run_id == run_id, TerritorySnapshot.territory_id == territory_id))

        if find() is None:
            row = TerritorySnapshot(run_id=run_id, supercluster=supercluster,
                                    territory_id=territory_id, data=dict(data), recorded_at=at)
            _insert_or_find(session, row, find)


def territory_snapshot(*, session: Session, run_id: int) -> list[dict[str, Any]]:
    """Return the territories' JSON as saved for a run, in the order saved."""
    rows = session.scalars(
        select(TerritorySnapshot).where(TerritorySnapshot.run_id == run_id)
        .order_by(TerritorySnapshot.id)
    )
    return [dict(row.data) for row in rows]


def record_step_duration(
    *, session: Session, run_id: int, kind: str, cluster: str | None, seconds: float,
    estimate_s: float, at: datetime,
) -> None:
    """Record how long a step took, beside what it was estimated to take."""
    session.add(StepDuration(run_id=run_id, kind=kind, cluster=cluster, seconds=seconds,
                             estimate_s=estimate_s, recorded_at=at))
    session.flush()


def duration_history(
    *, session: Session, kind: str, cluster: str | None, limit: int = 5
) -> list[float]:
    """Return the latest durations (seconds) of a kind of step on a cluster, newest first."""
    return list(session.scalars(
        select(StepDuration.seconds)
        .where(StepDuration.kind == kind, _same(StepDuration.cluster, cluster))
        .order_by(StepDuration.recorded_at.desc(), StepDuration.id.desc()).limit(limit)
    ))


def add_escalation(
    *, session: Session, run_id: int, step_id: int, cluster: str, condition: str,
    details: Mapping[str, Any], at: datetime,
) -> Escalation:
    """Record that a cluster met one of the vendor's escalation conditions."""
    escalation = Escalation(run_id=run_id, step_id=step_id, cluster=cluster,
                            condition=condition, details=dict(details), created_at=at)
    session.add(escalation)
    session.flush()
    return escalation


def open_escalations(*, session: Session, run_id: int) -> list[Escalation]:
    """Return a run's unresolved escalations, oldest first."""
    return list(session.scalars(
        select(Escalation)
        .where(Escalation.run_id == run_id, Escalation.resolved_at.is_(None))
        .order_by(Escalation.id)
    ))


def resolve_escalations(*, session: Session, run_id: int, at: datetime, by: str) -> int:
    """Mark a run's open escalations resolved; return how many."""
    result = session.execute(
        update(Escalation)
        .where(Escalation.run_id == run_id, Escalation.resolved_at.is_(None))
        .values(resolved_at=at, resolved_by=by)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- approvals ------------------------------------------------------------------------------

def _approval(session: Session, run_id: int, user_id: str, kind: str) -> Approval | None:
    return session.scalar(select(Approval).where(
        Approval.run_id == run_id, Approval.user_id == user_id, Approval.kind == kind))


def set_approval(
    *, session: Session, run_id: int, user_id: str, kind: str, source: str,
    event_id: str | None, at: datetime,
) -> bool:
    """Count a person's approval (or rejection, or overrun approval) once; True if it counted."""
    existing = _approval(session, run_id, user_id, kind)
    if existing is None:
        given = Approval(run_id=run_id, user_id=user_id, kind=kind, source=source,
                         event_id=event_id, created_at=at)
        existing = _insert_or_find(  # not None: given meanwhile in another transaction
            session, given, lambda: _approval(session, run_id, user_id, kind))
        if existing is None:
            return True
    if existing.withdrawn_at is None:
        return False
    existing.withdrawn_at = None  # given again after withdrawal: counts again
    existing.created_at, existing.source, existing.event_id = at, source, event_id
    session.flush()
    return True


def withdraw_approval(*, session: Session, run_id: int, user_id: str, kind: str,
                      at: datetime) -> bool:
    """Withdraw a person's approval; True if there was one to withdraw."""
    existing = _approval(session, run_id, user_id, kind)
    if existing is None or existing.withdrawn_at is not None:
        return False
    existing.withdrawn_at = at
    session.flush()
    return True


def active_approvals(*, session: Session, run_id: int, kind: str) -> list[Approval]:
    """Return the approvals of a kind that still count, oldest first."""
    return list(session.scalars(
        select(Approval)
        .where(Approval.run_id == run_id, Approval.kind == kind,
               Approval.withdrawn_at.is_(None))
        .order_by(Approval.created_at, Approval.id)
    ))


# --- Slack layer: runs by message, approvals by source, outbox claims, health ----------------

APPROVABLE = ("awaiting_approval", "approved", "scheduled")
UNSENT = ("pending", "sending")
OUTBOX_LOCK_KEY = 0x0757B0C5  # any constant shared by every process of the bot


def get_run_by_message(*, session: Session, channel: str, ts: str) -> Run | None:
    """Return the run whose plan message is `ts` in `channel`, or None."""
    return session.scalar(select(Run).where(Run.channel == channel, Run.message_ts == ts))


def runs_with_plan_message(*, session: Session, statuses: Iterable[str] = APPROVABLE) -> list[Run]:
    """Return runs in `statuses` whose plan message has been posted, oldest first."""
    return list(session.scalars(
        select(Run).where(Run.status.in_(tuple(statuses)), Run.message_ts.is_not(None))
        .order_by(Run.id)
    ))


def approvals_of(*, session: Session, run_id: int, kind: str) -> list[Approval]:
    """Return every approval of a kind for a run, withdrawn ones included, oldest first."""
    return list(session.scalars(
        select(Approval).where(Approval.run_id == run_id, Approval.kind == kind)
        .order_by(Approval.created_at, Approval.id)
    ))


def lock_outbox(*, session: Session) -> None:
    """Serialize outbox claims across processes until the caller's transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the database write lock (BEGIN
    IMMEDIATE), which is what serializes SQLite writers anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK_KEY)))
    else:
        session.execute(select(literal(1)).execution_options(**{SQLITE_WRITE_LOCK: True}))



def unsent_messages(*, session: Session, limit: int = 500) -> list[OutboxMessage]:
    """Return the messages not yet delivered (pending or being sent), oldest first."""
    return list(session.scalars(
        select(OutboxMessage).where(OutboxMessage.status.in_(UNSENT))
        .order_by(OutboxMessage.id).limit(limit)
    ))


def last_sent(*, session: Session, kind: str, since: datetime) -> list[tuple[str | None, int | None,
                                                                              datetime]]:
    """Return (channel, run_id, sent_at) of messages of a kind delivered since `since`."""
    rows = session.execute(
        select(OutboxMessage.channel, OutboxMessage.run_id, OutboxMessage.sent_at)
        .where(OutboxMessage.kind == kind, OutboxMessage.status == "sent",
               OutboxMessage.sent_at >= since)
    )
    return [(channel, run_id, sent_at) for channel, run_id, sent_at in rows if sent_at]


def claim_message(*, session: Session, message_id: int, lease_until: datetime) -> int | None:
    """Mark a message as being sent until `lease_until`; return its new attempt count.

    The attempt count is the claim's token: only the claimant knows it, so a delivery that lost
    its lease (and was claimed again) cannot record its result over the new claim's.
    """
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None or message.status not in UNSENT:
        return None
    message.status, message.not_before = "sending", lease_until
    message.attempts += 1
    session.flush()
    return message.attempts


def settle_message(
    *, session: Session, message_id: int, attempt: int, status: str, at: datetime,
    not_before: datetime | None = None, slack_ts: str | None = None, error: str | None = None,
) -> bool:
    """Record a claimed message's outcome if the claim is still ours; True when recorded."""
    values: dict[str, Any] = {"status": status, "last_error": error}
    if status == "sent":
        values.update(sent_at=at, slack_ts=slack_ts)
    if not_before is not None:
        values["not_before"] = not_before
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "sending",
               OutboxMessage.attempts == attempt)
        .values(**values).execution_options(synchronize_session=False)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def supersede_messages(*, session: Session, ids: Iterable[int]) -> None:
    """Mark queued edits that a newer edit of the same message replaces."""
    ids = list(ids)
    if ids:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_(ids),
                                        OutboxMessage.status == "pending")
            .values(status="superseded").execution_options(synchronize_session=False)
        )


def set_message_ts(*, session: Session, run_id: int, ts: str) -> None:
    """Store the plan message's ts on its run without touching the run's version.

    A plain UPDATE, not the ORM: the ts is not a decision about the run, and bumping the
    optimistic version here would make a concurrent approval fail for nothing.
    """
    session.execute(update(Run).where(Run.id == run_id).values(message_ts=ts)
                    .execution_options(synchronize_session=False))


def outbox_backlog(*, session: Session, now: datetime) -> tuple[int, float | None]:
    """Return how many messages wait to be delivered and the age in seconds of the oldest."""
    count, oldest = session.execute(
        select(func.count(OutboxMessage.id), func.min(OutboxMessage.created_at))
        .where(OutboxMessage.status.in_(UNSENT))
    ).one()
    if oldest is not None and oldest.tzinfo is None:  # SQLite's MIN() bypasses the column type
        oldest = datetime.fromisoformat(str(oldest)).replace(tzinfo=now.tzinfo)
    elif isinstance(oldest, str):
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    return int(count), (now - oldest).total_seconds() if oldest is not None else None


def ping(*, session: Session) -> None:
    """Run a trivial query (raises when the database cannot be reached)."""
    session.execute(select(literal(1)))


def lock_run(*, session: Session, ref: str | int) -> Run | None:
    """Return the run named by `ref`, locked until the transaction ends (None if no such run).

    Approvals of one run must be counted one after the other: two given at the same moment
    would otherwise each see the other missing, and the quorum would never be noticed.
    """
    run_id = parse_run_ref(ref)
    if run_id is None:
        return None
    return session.scalars(
        select(Run).where(Run.id == run_id).with_for_update()
        .execution_options(populate_existing=True, **{SQLITE_WRITE_LOCK: True})
    ).first()
