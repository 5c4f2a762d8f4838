"""Runs: naming, finding, listing and locking them, and their plan message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.engine.states import APPROVABLE, RunStatus
from storage.db import SQLITE_WRITE_LOCK
from storage.models import Run

_RUN_REF = re.compile(r"[Rr]?([0-9]{1,9})")
# Run ids fit PostgreSQL's INTEGER; a longer number names no run (and never reaches the database).
MAX_RUN_ID = 999_999_999


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
        return ref if 0 < ref <= MAX_RUN_ID else None
    match = _RUN_REF.fullmatch(str(ref).strip())
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def get_run(*, session: Session, ref: str | int) -> Run | None:
    """Return the run named by `ref` (12, "12", "R12", "r12"), or None."""
    run_id = parse_run_ref(ref)
    return None if run_id is None else session.get(Run, run_id)


def list_runs(
    *, session: Session, target: str | None = None,
    statuses: Iterable[RunStatus | str] | None = None, limit: int = 50,
) -> list[Run]:
    """Return runs, newest first, optionally of one target and in some statuses."""
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if target is not None:
        query = query.where(Run.target == target)
    if statuses is not None:
        query = query.where(Run.status.in_(tuple(statuses)))
    return list(session.scalars(query))


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


def get_run_by_message(*, session: Session, channel: str, ts: str) -> Run | None:
    """Return the run whose plan message is `ts` in `channel`, or None."""
    return session.scalar(select(Run).where(Run.channel == channel, Run.message_ts == ts))


def runs_with_plan_message(
    *, session: Session, statuses: Iterable[RunStatus | str] = APPROVABLE,
) -> list[Run]:
    """Return runs in `statuses` whose plan message has been posted, oldest first."""
    return list(session.scalars(
        select(Run).where(Run.status.in_(tuple(statuses)), Run.message_ts.is_not(None))
        .order_by(Run.id)
    ))


def set_message_ts(*, session: Session, run_id: int, ts: str) -> None:
    """Store the plan message's ts on its run without touching the run's version.

    A plain UPDATE, not the ORM: the ts is not a decision about the run, and bumping the
    optimistic version here would make a concurrent approval fail for nothing.
    """
    session.execute(update(Run).where(Run.id == run_id).values(message_ts=ts)
                    .execution_options(synchronize_session=False))


def runs_by_status(*, session: Session) -> dict[str, int]:
    """Count the runs of each status that has any."""
    rows = session.execute(select(Run.status, func.count()).group_by(Run.status))
    return {RunStatus(status).value: int(count) for status, count in rows}
