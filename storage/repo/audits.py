"""The audit trail: who did what to a run, and when.

Named in the plural (like runs, steps) so that the module never shadows the `audit` function
that `storage.repo` re-exports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select
from sqlalchemy.orm import Session

from storage.models import AuditEntry
from storage.repo._shared import table

_INSERT = insert(table(AuditEntry))
WRITTEN = "upgradebot_audit_written"  # session info: the entries this unit of work wrote


def audit(
    *, session: Session, at: datetime, actor: str, action: str, run_id: int | None = None,
    step_id: int | None = None, detail: Mapping[str, Any] | None = None,
) -> int:
    """Record who did what (actor: a Slack user id, "worker:<id>", "cli" or "system"); its id.

    A plain insert, written at once: every transition writes one, and none is read back in
    the transaction that wrote it.
    """
    values = {"at": at, "actor": actor, "action": action, "run_id": run_id,
              "step_id": step_id, "detail": dict(detail or {})}
    result = cast("CursorResult[Any]", session.execute(_INSERT, values))
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert always has one
    entry_id = int(key[0])
    # Told to the log and the metrics once committed (`bot.runs.journal`); never added to the
    # session, so never flushed again.
    session.info.setdefault(WRITTEN, []).append(AuditEntry(id=entry_id, **values))
    return entry_id


def audit_trail(*, session: Session, run_id: int) -> list[AuditEntry]:
    """Return a run's audit entries in the order they happened."""
    return list(session.scalars(
        select(AuditEntry).where(AuditEntry.run_id == run_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    ))
