"""The lean record of a poll: a step that waits on its cluster gives its lease back.

Most visits of a run are polls of a busy cluster (a restart takes dozens of them) whose outcome
only moves the step's data and its next check. Those are written by prepared Core statements
instead of through ORM objects: one locked read of the row, one update, and the claim log's
release (`claims.log_release`, as for every release). Whatever else a visit decides (a
transition, a thread reply) goes through the full record in `bot.worker.runner`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from storage.db import SQLITE_WRITE_LOCK
from storage.models import Step
from storage.repo._shared import table
from storage.repo.claims import log_release

_steps = table(Step)

# Built once: a statement object keeps its compiled form's cache key, so a poll never pays
# for building and keying its SQL again.
_READ = (select(_steps.c.claimed_by, _steps.c.data).where(_steps.c.id == bindparam("sid"))
         .with_for_update().execution_options(**{SQLITE_WRITE_LOCK: True}))
_WRITE = (update(_steps)
          .where(_steps.c.id == bindparam("sid"), _steps.c.claimed_by == bindparam("me"))
          .values(data=bindparam("data", type_=_steps.c.data.type), last_error=None,
                  claimed_by=None, claimed_until=None,
                  next_check_at=bindparam("next_at", type_=_steps.c.next_check_at.type)))
_WRITE_PHASE = _WRITE.values(phase=bindparam("phase"))


class PollRecord(enum.Enum):
    """What became of a poll's lean record."""

    KEPT = "kept"  # written; the step is released
    LOST = "lost"  # another worker holds the step now: nothing written
    CHANGED = "changed"  # someone changed the step's data since the claim: use the full record


def record_poll(*, session: Session, step_id: int, worker_id: str, seen: Mapping[str, Any],
                data: Mapping[str, Any], phase: str | None, now: datetime,
                next_check_at: datetime | None) -> PollRecord:
    """Store a waiting step's new data and release it, if it is as the claim read it.

    `seen` is the data the claim read; when the row's data differs (an operator's control
    wrote to it meanwhile) nothing is written and the caller records the full way, which
    merges.
    """
    row = session.execute(_READ, {"sid": step_id}).one_or_none()
    if row is None or row.claimed_by != worker_id:
        return PollRecord.LOST
    if dict(row.data or {}) != dict(seen):
        return PollRecord.CHANGED
    params: dict[str, Any] = {"sid": step_id, "me": worker_id, "data": dict(data),
                              "next_at": next_check_at}
    if phase is not None:
        params["phase"] = phase
    session.execute(_WRITE_PHASE if phase is not None else _WRITE, params)
    log_release(session=session, step_id=step_id, worker_id=worker_id, now=now)
    return PollRecord.KEPT
