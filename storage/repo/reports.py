"""The DMA requests a run made (for its evidence) and its re-verification after completion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from storage.models import DmaRequest, Reverification
from storage.repo._shared import table

_INSERT_REQUESTS = insert(table(DmaRequest))


def add_dma_requests(*, session: Session, run_id: int, step_id: int | None,
                     entries: Iterable[Mapping[str, Any]], at: datetime) -> int:
    """Store a visit's requests (already redacted), stamped with the visit's time; say how many."""
    rows = [{"run_id": run_id, "step_id": step_id, "at": at, "cluster": e["cluster"],
             "method": e["method"], "path": e["path"], "status": e.get("status"),
             "elapsed_ms": int(e.get("elapsed_ms") or 0), "request": e.get("request"),
             "response": e.get("response"), "error": e.get("error")} for e in entries]
    if rows:  # one plain multi-row insert: every visit writes some, none is read back
        session.execute(_INSERT_REQUESTS, rows)
    return len(rows)


def dma_requests_of(*, session: Session, run_id: int) -> list[DmaRequest]:
    """A run's DMA requests, in the order they were made."""
    return list(session.scalars(
        select(DmaRequest).where(DmaRequest.run_id == run_id).order_by(DmaRequest.id)))


def schedule_reverification(*, session: Session, run_id: int, due_at: datetime) -> None:
    """Plan one re-verification of a run (a second call for the same run changes nothing)."""
    if session.scalar(select(Reverification).where(Reverification.run_id == run_id)) is None:
        session.add(Reverification(run_id=run_id, due_at=due_at))
        session.flush()


def due_reverifications(*, session: Session, now: datetime) -> list[Reverification]:
    """Re-verifications whose time has come and that were not done, locked for this caller."""
    return list(session.scalars(
        select(Reverification).where(Reverification.done_at.is_(None),
                                     Reverification.due_at <= now)
        .order_by(Reverification.due_at).with_for_update(skip_locked=True)))


def next_reverification(*, session: Session) -> datetime | None:
    """When the next pending re-verification is due."""
    return session.scalar(select(Reverification.due_at).where(Reverification.done_at.is_(None))
                          .order_by(Reverification.due_at).limit(1))


def reverification_of(*, session: Session, run_id: int) -> Reverification | None:
    """The run's re-verification, if one was planned."""
    return session.scalar(select(Reverification).where(Reverification.run_id == run_id))
