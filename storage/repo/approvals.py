"""Approvals: each person's vote counts once, and counts again when given again after withdrawal.

Concurrent votes of one run are serialized by the caller (`runs.lock_run`); the unique
(run, user, kind) constraint is the last word when two processes insert the same vote.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.enums import ApprovalKind
from storage.models import Approval
from storage.repo._shared import insert_or_find


def _approval(
    session: Session, run_id: int, user_id: str, kind: ApprovalKind | str
) -> Approval | None:
    return session.scalar(select(Approval).where(
        Approval.run_id == run_id, Approval.user_id == user_id, Approval.kind == kind))


def set_approval(
    *, session: Session, run_id: int, user_id: str, kind: ApprovalKind | str, source: str,
    event_id: str | None, at: datetime,
) -> bool:
    """Count a person's approval (or rejection, or overrun approval) once; True if it counted."""
    existing = _approval(session, run_id, user_id, kind)
    if existing is None:
        given = Approval(run_id=run_id, user_id=user_id, kind=kind, source=source,
                         event_id=event_id, created_at=at)
        existing = insert_or_find(  # not None: given meanwhile in another transaction
            session, given, lambda: _approval(session, run_id, user_id, kind))
        if existing is None:
            return True
    if existing.withdrawn_at is None:
        return False
    existing.withdrawn_at = None  # given again after withdrawal: counts again
    existing.created_at, existing.source, existing.event_id = at, source, event_id
    session.flush()
    return True


def withdraw_approval(*, session: Session, run_id: int, user_id: str, kind: ApprovalKind | str,
                      at: datetime) -> bool:
    """Withdraw a person's approval; True if there was one to withdraw."""
    existing = _approval(session, run_id, user_id, kind)
    if existing is None or existing.withdrawn_at is not None:
        return False
    existing.withdrawn_at = at
    session.flush()
    return True


def active_approvals(
    *, session: Session, run_id: int, kind: ApprovalKind | str
) -> list[Approval]:
    """Return the approvals of a kind that still count, oldest first."""
    return list(session.scalars(
        select(Approval)
        .where(Approval.run_id == run_id, Approval.kind == kind,
               Approval.withdrawn_at.is_(None))
        .order_by(Approval.created_at, Approval.id)
    ))


def active_approvals_by_kind(*, session: Session, run_id: int) -> dict[str, list[Approval]]:
    """Every approval of a run that still counts, by kind, oldest first (one query)."""
    found: dict[str, list[Approval]] = {}
    for row in session.scalars(
            select(Approval).where(Approval.run_id == run_id, Approval.withdrawn_at.is_(None))
            .order_by(Approval.created_at, Approval.id)):
        found.setdefault(str(row.kind), []).append(row)
    return found
