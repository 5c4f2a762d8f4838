"""A run's steps: adding its plan's steps and reading them back in plan order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from bot.engine.states import DONE_STEP
from storage.models import Run, Step
from storage.repo._shared import table
from storage.repo.claims import PARKED

_steps = table(Step)
_UNFINISHED = select(func.count()).select_from(_steps).where(
    _steps.c.run_id == bindparam("rid"), _steps.c.status.not_in([s.value for s in DONE_STEP]))


def add_steps(*, session: Session, run: Run, steps: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Insert a run's steps from dicts of Step fields (seq, key, kind, cluster, deps, ...).

    A step with dependencies starts parked: claims never look at it until one finishes.
    """
    if run.id is None:
        session.flush()
    rows = [Step(run_id=run.id, **{"next_check_at": PARKED if fields.get("deps") else None,
                                   **dict(fields)}) for fields in steps]
    session.add_all(rows)
    session.flush()
    return rows


def unfinished_steps(*, session: Session, run_id: int) -> int:
    """How many steps of a run are not done or skipped yet (one count, no step objects)."""
    return int(session.execute(_UNFINISHED, {"rid": run_id}).scalar() or 0)


def steps_of(*, session: Session, run_id: int) -> list[Step]:
    """Return a run's steps in plan order."""
    return list(session.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.seq)))
