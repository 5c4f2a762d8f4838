"""The audit trail: who did what to a run, and when.

Named in the plural (like runs, steps) so that the module never shadows the `audit` function
that `storage.repo` re-exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditEntry


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
