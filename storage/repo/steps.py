"""A run's steps: adding its plan's steps and reading them back in plan order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.engine.states import DONE_STEP
from storage.models import Run, Step
from storage.repo.claims import PARKED


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
    return int(session.scalar(select(func.count()).select_from(Step).where(
        Step.run_id == run_id, Step.status.not_in(DONE_STEP))) or 0)


def steps_of(*, session: Session, run_id: int) -> list[Step]:
    """Return a run's steps in plan order."""
    return list(session.scalars(select(Step).where(Step.run_id == run_id).order_by(Step.seq)))
