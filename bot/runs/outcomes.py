"""Store what a visit decided: step and run transitions, escalation records, thread replies."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot import messages
from bot.config import Settings
from bot.engine.durations import say_duration
from bot.engine.plans import StepKind
from bot.engine.states import RunEvent, RunStatus, StepEvent
from bot.runs.escalations import escalate, note_overdue
from bot.runs.outcome import Outcome
from bot.runs.posting import post, update_board, upload
from bot.runs.transitions import hold, transition_run, transition_step
from storage import repo
from storage.models import Run, Step

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
BOARD_AT = "board_at"  # step data: when this step's waits last edited the board
BOARD_REFRESH = timedelta(minutes=1)


def apply_outcome(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
                  actor: str, settings: Settings, progress: Progress) -> None:
    """Move the step and its run as the outcome says, and queue what the thread must show."""
    overdue = (step.data or {}).get("overdue")
    step.data = _merged(step.data or {}, outcome)
    if outcome.phase is not None:
        step.phase = outcome.phase
    for report in outcome.reports:
        post(session, run, messages.report_message(run.name, report), now,
             key=f"{run.id}:{report.kind}:{report.subject}:{step.attempts}")
    if outcome.kind == "wait":
        step.last_error = None
        note_overdue(session, run, step, now)
        if _board_behind(step, now, overdue_before=overdue):
            update_board(session, run, now)
            step.data = {**step.data, BOARD_AT: now.isoformat()}
        return
    progress(f"{run.name} {step.key}: {outcome.note}")
    if outcome.kind in ("done", "skip"):
        _finish_step(session, run, step, outcome, now=now, actor=actor, progress=progress,
                     settings=settings)
        return
    if outcome.kind == "block":
        _block(session, run, step, outcome, now=now, actor=actor)
    elif outcome.kind == "escalate":
        _escalate(session, run, step, outcome, now=now, actor=actor, settings=settings)
    else:
        _fail(session, run, step, outcome, now=now, actor=actor)
    update_board(session, run, now)


def plain_wait(data: Mapping[str, Any], outcome: Outcome,
               now: datetime) -> tuple[dict[str, Any], bool] | None:
    """The step's new data, and whether the board needs an edit, for a plain wait; else None.

    A plain wait (most polls of a restarting cluster) posts no thread reply and no overdue
    note: it may be recorded the lean way (`repo.record_poll`, then `queue_board` if told)
    with exactly what `apply_outcome` would have stored. `data` is the step's data as the
    visit began.
    """
    if outcome.kind != "wait" or outcome.reports or outcome.snapshot is not None:
        return None
    merged = _merged(data, outcome)
    if merged.get("overdue"):
        return None
    if _behind(merged, now, overdue_before=data.get("overdue")):
        return {**merged, BOARD_AT: now.isoformat()}, True
    return merged, False


def _merged(data: Mapping[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The step's data with the outcome's on top; a None in the outcome removes a key."""
    return {k: v for k, v in {**data, **outcome.data}.items() if v is not None}


def _board_behind(step: Step, now: datetime, *, overdue_before: object) -> bool:
    """True when a waiting step changed what the board shows, or its times grew stale.

    The board shows a step's state from its first visit on, and whether it is overdue; the
    rest (time taken, expected end) only ages, so a long wait edits it once a minute, not at
    every poll: a hundred runs polling restarting clusters would otherwise render a hundred
    boards a poll.
    """
    return _behind(step.data or {}, now, overdue_before=overdue_before)


def _behind(data: Mapping[str, Any], now: datetime, *, overdue_before: object) -> bool:
    if BOARD_AT not in data or data.get("overdue") != overdue_before:
        return True
    return now - datetime.fromisoformat(data[BOARD_AT]) >= BOARD_REFRESH


def _block(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
           actor: str) -> None:
    transition_step(session, step, StepEvent.BLOCK, now=now, actor=actor, note=outcome.note)
    hold(session, run, RunEvent.PAUSE, now=now, actor=actor, reason=outcome.note)
    # The people's-work pause is ended by the people saying they are done.
    ways = ("continue", "abort") if step.kind == StepKind.PEOPLE_WORK else ("resume", "abort")
    post(session, run, messages.notice(run.name, "⏸️", f"paused at {step.key}: {outcome.note}",
                                       actions=ways), now)


def _escalate(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
              actor: str, settings: Settings) -> None:
    transition_step(session, step, StepEvent.ESCALATE, now=now, actor=actor, note=outcome.note)
    hold(session, run, RunEvent.ESCALATE, now=now, actor=actor, reason=outcome.note)
    escalate(session, run, step, outcome, now=now, settings=settings)
    cluster = step.cluster or run.target
    # What the vendor will ask for, attached at once: the picture and the evidence bundle.
    count = len(repo.escalations_of(session=session, run_id=run.id))
    upload(session, run, "timeline", now, key=f"{run.id}:timeline:escalation:{count}",
           comment=f"{run.name} timeline when {cluster} escalated")
    upload(session, run, "evidence", now, key=f"{run.id}:evidence:escalation:{count}",
           comment=f"{run.name} evidence bundle for Polycom Global Services (plan, audit, "
                   "cluster states, DMA requests, timings, escalation)")


def _fail(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
          actor: str) -> None:
    step.last_error = outcome.note
    transition_step(session, step, StepEvent.FAIL, now=now, actor=actor, note=outcome.note)
    hold(session, run, RunEvent.FAIL, now=now, actor=actor, reason=outcome.note)
    # The pre-flight step is a run's first: failing there means it never started.
    where = ("did not start" if step.kind == StepKind.PREFLIGHT
             else f"stopped at {step.key}")
    ways = (f"`/upgrade abort {run.name}`, then a new plan" if outcome.data.get("drift")
            else f"after fixing the cause: `/upgrade retry {run.name}`, or "
                 f"`/upgrade abort {run.name}`")
    post(session, run, messages.notice(
        run.name, "⛔", f"{where}: {outcome.note}. Next: {ways}.",
        actions=("abort",) if outcome.data.get("drift") else ("retry", "abort")), now)


def _finish_step(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
                 actor: str, progress: Progress, settings: Settings) -> None:
    event = StepEvent.SKIP if outcome.kind == "skip" else StepEvent.FINISH
    transition_step(session, step, event, now=now, actor=actor, note=outcome.note)
    if step.started_at is not None and event is StepEvent.FINISH:
        repo.record_step_duration(session=session, run_id=run.id, kind=step.kind,
                                  cluster=step.cluster,
                                  seconds=(now - step.started_at).total_seconds(),
                                  estimate_s=step.estimate_s, at=now)
    if run.status == RunStatus.RUNNING and not repo.unfinished_steps(session=session,
                                                                      run_id=run.id):
        transition_run(session, run, RunEvent.COMPLETE, now=now, actor=actor)
        took = (now - run.started_at).total_seconds() if run.started_at else 0.0
        done = (f"{run.strategy} of {run.target} done (recovers R{run.recovers})"
                if run.recovers else f"{run.target} is on {run.to_version}")
        post(session, run, messages.notice(
            run.name, "🎉", f"completed: {done} ({say_duration(took)})"), now)
        repo.schedule_reverification(session=session, run_id=run.id,
                                     due_at=now + settings.timing.reverify_after)
        upload(session, run, "timeline", now, key=f"{run.id}:timeline:end",
               comment=f"{run.name} timeline: planned and actual phases per cluster")
        progress(f"{run.name} completed in {say_duration(took)}")
    update_board(session, run, now)
