"""Every status change of a run or a step: the transition table decides, the audit records it.

Run inside the caller's session (the caller owns the unit of work). A step is started, finished,
blocked, escalated, failed, resumed, retried and cancelled through `transition_step` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.engine.states import (
    DONE_STEP,
    ENDED_RUN,
    TERMINAL_STEP,
    WAITING_RUN,
    RunEvent,
    RunStatus,
    StepEvent,
    StepStatus,
    next_run_status,
    next_step_status,
    run_may,
)
from bot.runs import journal
from storage import repo
from storage.db import WAKE_WORKER
from storage.models import Run, Step

# Whoever moves runs and steps tells the log and the metrics, after each commit.
journal.install()


def transition_run(session: Session, run: Run, event: RunEvent, *, now: datetime, actor: str,
                   detail: Mapping[str, Any] | None = None) -> None:
    """Move a run through the state machine and write the audit entry."""
    old = RunStatus(run.status)
    new = next_run_status(old, event, subject=f"run {run.name}")
    run.status = new
    run.updated_at = now
    if new is RunStatus.RUNNING and run.started_at is None:
        run.started_at = now
    if new in ENDED_RUN:
        run.finished_at = now
    session.info[WAKE_WORKER] = True  # a worker in this process looks again once committed
    repo.audit(session=session, at=now, actor=actor, run_id=run.id, action=f"run.{event.value}",
               detail={"from": old.value, "to": new.value, **(detail or {})})


def transition_step(session: Session, step: Step, event: StepEvent, *, now: datetime,
                    actor: str, note: str = "") -> None:
    """Move a step through the state machine and write the audit entry."""
    old = StepStatus(step.status)
    new = next_step_status(old, event, subject=f"step {step.key}")
    step.status = new
    if event is StepEvent.START and step.started_at is None:
        step.started_at = now
    if new in TERMINAL_STEP:
        step.finished_at = now
    if new in DONE_STEP:
        session.flush()
        repo.unpark_dependents(session=session, step=step)
    session.info[WAKE_WORKER] = True  # a worker in this process looks again once committed
    repo.audit(session=session, at=now, actor=actor, run_id=step.run_id, step_id=step.id,
               action=f"step.{event.value}",
               detail={"step": step.key, "from": old.value, "to": new.value, "note": note})


def hold(session: Session, run: Run, event: RunEvent, *, now: datetime, actor: str,
         reason: str) -> None:
    """Stop a running or held run for a person; a block only adds its reason to a held run.

    A visit already under way when the run was paused may still end in a vendor condition or
    an error, which the run must then show; a second pause of a paused run changes nothing.
    """
    run.pause_reason = reason
    status = RunStatus(run.status)
    if status in WAITING_RUN or (event is RunEvent.PAUSE and status is not RunStatus.RUNNING):
        return  # only a started run is held, and pausing a held run adds only the reason
    if run_may(status, event):
        transition_run(session, run, event, now=now, actor=actor, detail={"reason": reason})
