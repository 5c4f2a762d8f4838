"""What runs leave behind besides the audit: territory snapshots, step durations, escalations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from bot.dma.models import Territory
from storage.models import Escalation, StepDuration, TerritorySnapshot
from storage.repo._shared import insert_or_find, same, table

_INSERT_DURATION = insert(table(StepDuration))


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
            insert_or_find(session, row, find)


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
    session.execute(_INSERT_DURATION, {"run_id": run_id, "kind": kind, "cluster": cluster,
                                       "seconds": seconds, "estimate_s": estimate_s,
                                       "recorded_at": at})


def duration_history(
    *, session: Session, kind: str, cluster: str | None, limit: int = 5
) -> list[float]:
    """Return the latest durations (seconds) of a kind of step on a cluster, newest first."""
    return list(session.scalars(
        select(StepDuration.seconds)
        .where(StepDuration.kind == kind, same(StepDuration.cluster, cluster))
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


def escalations_of(*, session: Session, run_id: int) -> list[Escalation]:
    """Return every escalation of a run, resolved or not, oldest first."""
    return list(session.scalars(
        select(Escalation).where(Escalation.run_id == run_id).order_by(Escalation.id)))


def unacknowledged_escalations(*, session: Session) -> list[Escalation]:
    """Return the open escalations nobody has acknowledged yet, of every run, oldest first."""
    return list(session.scalars(
        select(Escalation)
        .where(Escalation.resolved_at.is_(None), Escalation.acknowledged_at.is_(None))
        .order_by(Escalation.id)
    ))
