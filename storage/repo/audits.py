"""The audit trail: who did what to a run, and when.

Named in the plural (like runs, steps) so that the module never shadows the `audit` function
that `storage.repo` re-exports.

Entries are written with the unit of work that makes them, in one multi-row insert just before
it commits (or before the trail is read back in it): a claim that starts ten steps writes ten
entries in one statement, not ten round trips. A unit of work rolled back writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session, SessionTransaction

from storage.models import AuditEntry
from storage.repo._shared import table

_INSERT = insert(table(AuditEntry))
WRITTEN = "upgradebot_audit_written"  # session info: the rows this unit of work inserted
_UNWRITTEN = "upgradebot_audit_unwritten"  # session info: rows to insert before the commit


def audit(
    *, session: Session, at: datetime, actor: str, action: str, run_id: int | None = None,
    step_id: int | None = None, detail: Mapping[str, Any] | None = None,
) -> None:
    """Record who did what (actor: a Slack user id, "worker:<id>", "cli" or "system")."""
    values = {"at": at, "actor": actor, "action": action, "run_id": run_id,
              "step_id": step_id, "detail": dict(detail or {})}
    session.info.setdefault(_UNWRITTEN, []).append(values)


def write_audit(session: Session) -> None:
    """Insert the entries this unit of work recorded so far (the commit does it by itself)."""
    if session.in_nested_transaction():
        return  # a savepoint's commit: its outer transaction still has to commit
    rows = session.info.pop(_UNWRITTEN, None)
    if rows:
        session.execute(_INSERT, rows)
        # Told to the log and the metrics once committed (`bot.runs.journal`).
        session.info.setdefault(WRITTEN, []).extend(rows)


def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the unit of work ended (a savepoint's end is not that)
        session.info.pop(_UNWRITTEN, None)


event.listen(Session, "before_commit", write_audit)
event.listen(Session, "after_transaction_end", _forget)


def audit_trail(*, session: Session, run_id: int) -> list[AuditEntry]:
    """Return a run's audit entries in the order they happened."""
    write_audit(session)
    return list(session.scalars(
        select(AuditEntry).where(AuditEntry.run_id == run_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    ))
