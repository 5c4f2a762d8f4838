"""Run and step transitions with their audit entries and messages, inside the caller's session."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot import messages
from bot.clock import Clock
from bot.config import Settings
from bot.engine.planner import StepKind, plan_from_json
from bot.engine.states import (
    TERMINAL_RUN,
    RunEvent,
    RunStatus,
    StepEvent,
    StepStatus,
    next_run_status,
    next_step_status,
)
from bot.engine.windows import StepProgress, Window, expired_unapproved, needs_overrun
from bot.engine.windows import remaining_seconds as _remaining
from bot.worker.outcome import Outcome
from storage import repo
from storage.db import unit_of_work
from storage.models import Run, Step

log = logging.getLogger(__name__)

FINISHED = (StepStatus.DONE.value, StepStatus.SKIPPED.value)
BOARD_STATE = {
    StepKind.BUSY_OUT: "busying out", StepKind.DRAIN: "draining",
    StepKind.OUT_OF_SERVICE: "out of service", StepKind.REMOVE: "leaving the supercluster",
    StepKind.INSTALL: "installing", StepKind.WAIT_LOGIN: "installing (restarting)",
    StepKind.VERIFY: "verifying", StepKind.LICENCE_KEYS: "licence keys",
    StepKind.JOIN: "joining", StepKind.RETURN_TO_SERVICE: "returning to service",
    StepKind.UPLOAD: "uploading package", StepKind.CHECK_TERRITORIES: "checking territories",
    StepKind.REASSIGN_TERRITORIES: "reassigning territories",
    StepKind.MOVE_TERRITORIES: "moving territories",
}
DONE_STATE = {StepKind.VERIFY: "verified", StepKind.LICENCE_KEYS: "verified",
              StepKind.JOIN: "joined", StepKind.RETURN_TO_SERVICE: "in service",
              StepKind.CHECK_TERRITORIES: "done", StepKind.UPLOAD: "package uploaded",
              StepKind.REMOVE: "stand-alone", StepKind.OUT_OF_SERVICE: "out of service",
              StepKind.DRAIN: "drained", StepKind.BUSY_OUT: "busied out",
              StepKind.MOVE_TERRITORIES: "in service", StepKind.INSTALL: "installing",
              StepKind.WAIT_LOGIN: "logged back in"}


def transition_run(session: Session, run: Run, event: RunEvent, *, now: datetime, actor: str,
                   detail: Mapping[str, Any] | None = None) -> None:
    """Move a run through the state machine and write the audit entry."""
    old = run.status
    new = next_run_status(RunStatus(old), event)
    run.status = new.value
    run.updated_at = now
    if new is RunStatus.RUNNING and run.started_at is None:
        run.started_at = now
    if new in TERMINAL_RUN or new is RunStatus.FAILED:
        run.finished_at = now
    repo.audit(session=session, at=now, actor=actor, run_id=run.id, action=f"run.{event.value}",
               detail={"from": old, "to": new.value, **(detail or {})})


def transition_step(session: Session, step: Step, event: StepEvent, *, now: datetime,
                    actor: str, note: str = "") -> None:
    """Move a step through the state machine and write the audit entry."""
    old = step.status
    step.status = next_step_status(StepStatus(old), event).value
    if step.status in FINISHED or step.status == StepStatus.CANCELLED.value:
        step.finished_at = now
    repo.audit(session=session, at=now, actor=actor, run_id=step.run_id, step_id=step.id,
               action=f"step.{event.value}",
               detail={"step": step.key, "from": old, "to": step.status, "note": note})


def post(session: Session, run: Run, payload: Mapping[str, Any], now: datetime,
         key: str | None = None) -> None:
    """Queue a reply in the run's thread (delivered by the outbox, never blocking a step)."""
    repo.enqueue_message(session=session, at=now, payload=dict(payload), channel=run.channel,
                         run_id=run.id, kind="post", thread=True, key=key)


def update_board(session: Session, run: Run, now: datetime) -> None:
    """Queue an edit of the plan message into a status board (the outbox coalesces edits)."""
    steps = repo.steps_of(session=session, run_id=run.id)
    plan = plan_from_json(run.plan)
    lines = [_cluster_line(name, [s for s in steps if s.cluster == name], now,
                           dict(plan.cluster_estimates).get(name, 0.0)) for name in plan.order]
    elapsed = (now - run.started_at).total_seconds() if run.started_at else 0.0
    payload = messages.board_message(run.name, run.status.replace("_", " "), lines,
                                     elapsed_s=elapsed, estimate_s=plan.total_estimate_s)
    repo.enqueue_message(session=session, at=now, payload=payload, channel=run.channel,
                         run_id=run.id, kind="update")


def _cluster_line(name: str, steps: list[Step], now: datetime,
                  estimate: float) -> messages.ClusterLine:
    state = "waiting"
    for step in steps:
        kind = StepKind(step.kind)
        if step.status in (StepStatus.ESCALATED.value, StepStatus.FAILED.value,
                           StepStatus.BLOCKED.value):
            state = {"escalated": "ESCALATED", "failed": "FAILED"}.get(step.status, "blocked")
            break
        if step.status == StepStatus.ACTIVE.value:
            state = BOARD_STATE.get(kind, kind.value.replace("_", " "))
            break
        if step.status in FINISHED:
            state = DONE_STATE.get(kind, state)
    elapsed = sum(((s.finished_at or now) - s.started_at).total_seconds()
                  for s in steps if s.started_at)
    return messages.ClusterLine(name, state, elapsed, estimate)


def apply_outcome(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
                  actor: str, settings: Settings, progress: Callable[[str], None]) -> None:
    """Store what a visit decided: step and run transitions, audit, messages."""
    for item in outcome.posts:
        render = (messages.final_check_message if item.get("type") == "final_check"
                  else messages.verification_message)
        post(session, run, render(run.name, item), now,
             key=f"{run.id}:{item.get('type')}:{item.get('cluster')}:{step.attempts}")
    if outcome.kind == "wait":
        step.last_error = None
        if outcome.board_state or outcome.phase:
            update_board(session, run, now)
        return
    progress(f"{run.name} {step.key}: {outcome.note}")
    if outcome.kind in ("done", "skip"):
        _finish_step(session, run, step, outcome, now=now, actor=actor, progress=progress)
        return
    if outcome.kind == "block":
        transition_step(session, step, StepEvent.BLOCK, now=now, actor=actor, note=outcome.note)
        _hold(session, run, RunEvent.PAUSE, now=now, actor=actor, reason=outcome.note)
        post(session, run, messages.notice(run.name, "⏸️", f"paused at {step.key}: "
                                           f"{outcome.note}", actions=("resume", "abort")), now)
    elif outcome.kind == "escalate":
        transition_step(session, step, StepEvent.ESCALATE, now=now, actor=actor,
                        note=outcome.note)
        _hold(session, run, RunEvent.ESCALATE, now=now, actor=actor, reason=outcome.note)
        repo.add_escalation(session=session, run_id=run.id, step_id=step.id,
                            cluster=step.cluster or run.target, condition=outcome.condition or "",
                            details=outcome.details, at=now)
        post(session, run, messages.escalation_message(
            run.name, cluster=step.cluster or run.target, condition=outcome.condition or "",
            note=outcome.note, details=outcome.details, contact=settings.escalation.contact,
            notify=settings.escalation.notify), now)
    else:
        step.last_error = outcome.note
        transition_step(session, step, StepEvent.FAIL, now=now, actor=actor, note=outcome.note)
        _hold(session, run, RunEvent.FAIL, now=now, actor=actor, reason=outcome.note)
        # The pre-flight step is a run's first: failing there means it never started.
        where = ("did not start" if step.kind == StepKind.PREFLIGHT.value
                 else f"stopped at {step.key}")
        post(session, run, messages.notice(
            run.name, "⛔", f"{where}: {outcome.note}. After fixing the cause: "
            f"`/upgrade retry {run.name}`, or `/upgrade abort {run.name}`.",
            actions=("retry", "abort")), now)
    update_board(session, run, now)


def _hold(session: Session, run: Run, event: RunEvent, *, now: datetime, actor: str,
          reason: str) -> None:
    """Stop a run that is running or held; a block only adds its reason to a held run."""
    run.pause_reason = reason
    held = (RunStatus.PAUSED.value, RunStatus.AWAITING_OVERRUN.value)
    if run.status == RunStatus.RUNNING.value or (run.status in held
                                                 and event is not RunEvent.PAUSE):
        transition_run(session, run, event, now=now, actor=actor, detail={"reason": reason})


def _finish_step(session: Session, run: Run, step: Step, outcome: Outcome, *, now: datetime,
                 actor: str, progress: Callable[[str], None]) -> None:
    event = StepEvent.SKIP if outcome.kind == "skip" else StepEvent.FINISH
    transition_step(session, step, event, now=now, actor=actor, note=outcome.note)
    if step.started_at is not None and event is StepEvent.FINISH:
        repo.record_step_duration(session=session, run_id=run.id, kind=step.kind,
                                  cluster=step.cluster,
                                  seconds=(now - step.started_at).total_seconds(),
                                  estimate_s=step.estimate_s, at=now)
    steps = repo.steps_of(session=session, run_id=run.id)
    if all(s.status in FINISHED for s in steps) and run.status == RunStatus.RUNNING.value:
        transition_run(session, run, RunEvent.COMPLETE, now=now, actor=actor)
        took = (now - run.started_at).total_seconds() if run.started_at else 0.0
        post(session, run, messages.notice(
            run.name, "🎉", f"completed: {run.target} is on {run.to_version} "
            f"({messages.fmt_duration(took)})"), now)
        progress(f"{run.name} completed in {messages.fmt_duration(took)}")
    update_board(session, run, now)


# -- windows ------------------------------------------------------------------------------------


def window_of(run: Run) -> Window | None:
    """The run's maintenance window, if it has one."""
    if run.window_start is None or run.window_end is None:
        return None
    return Window(start=run.window_start, duration=run.window_end - run.window_start,
                  tz=run.window_tz or "UTC")


def remaining_s(session: Session, run: Run, now: datetime, settings: Settings) -> float:
    """Predict the rest of the run from the plan and from earlier runs' step durations."""
    steps = repo.steps_of(session=session, run_id=run.id)
    progress = [StepProgress(key=s.key, kind=StepKind(s.kind), deps=tuple(s.deps or ()),
                             status=StepStatus(s.status), estimate_s=s.estimate_s,
                             started_at=s.started_at) for s in steps]
    history = {s.key: repo.duration_history(session=session, kind=s.kind, cluster=s.cluster)
               for s in steps if s.status not in FINISHED}
    return _remaining(now=now, steps=progress, history=history,
                      max_parallel={StepKind.INSTALL: settings.timing.max_parallel_installs})


def overrun_needed(session: Session, run: Run, now: datetime, settings: Settings) -> bool:
    """True when the predicted finish passes the window's end and no overrun was approved."""
    window = window_of(run)
    if window is None or run.overrun_approved:
        return False
    return needs_overrun(now=now, remaining_s=remaining_s(session, run, now, settings),
                         window=window, overrun_approved=run.overrun_approved)


def ask_overrun(session: Session, run: Run, now: datetime, actor: str,
                settings: Settings) -> None:
    """Stop at this safe point and ask the approvers to let the run overrun its window."""
    window = window_of(run)
    assert window is not None
    finish = now + timedelta(seconds=remaining_s(session, run, now, settings))
    transition_run(session, run, RunEvent.NEED_OVERRUN, now=now, actor=actor,
                   detail={"predicted_finish": finish.isoformat()})
    post(session, run, messages.notice(
        run.name, "⏱️", f"would finish at {window.local(finish):%H:%M %Z}, after the window "
        f"ends at {window.local(window.end):%H:%M %Z}. Stopped at a safe point: approve the "
        f"overrun to go on, or `/upgrade abort {run.name}`.", actions=("overrun", "abort")), now,
        key=f"{run.id}:overrun")
    update_board(session, run, now)


def housekeeping(sessions: sessionmaker[Session], settings: Settings, clock: Clock,
                 actor: str) -> None:
    """Start approved runs whose window has come, expire plans whose window is too short."""
    now = clock.now()
    waiting = (RunStatus.APPROVED.value, RunStatus.SCHEDULED.value,
               RunStatus.AWAITING_APPROVAL.value)
    with unit_of_work(sessions) as session:
        ids = session.scalars(select(Run.id).where(Run.status.in_(waiting))).all()
    for run_id in ids:
        try:
            with unit_of_work(sessions) as session:
                run = session.scalars(select(Run).where(Run.id == run_id)
                                      .with_for_update(skip_locked=True)).first()
                if run is not None:
                    advance_waiting_run(session, run, now, actor)
        except StaleDataError:
            log.info("run %s changed under us; another process handled it", run_id)


def advance_waiting_run(session: Session, run: Run, now: datetime, actor: str) -> None:
    """Start, schedule or expire a run that waits for approval or for its window."""
    window = window_of(run)
    status = RunStatus(run.status)
    if status is RunStatus.AWAITING_APPROVAL:
        plan = plan_from_json(run.plan)
        if window and expired_unapproved(now=now, window=window,
                                         estimate_s=plan.total_estimate_s):
            transition_run(session, run, RunEvent.EXPIRE, now=now, actor=actor)
            post(session, run, messages.notice(
                run.name, "⌛", "expired: still not approved, and the window no longer leaves "
                f"room for the estimated {messages.fmt_duration(plan.total_estimate_s)}"), now)
            update_board(session, run, now)
        return
    if window is None or window.start <= now < window.end:
        transition_run(session, run, RunEvent.START, now=now, actor=actor)
        post(session, run, messages.notice(run.name, "▶️", "started"), now, key=f"{run.id}:start")
        update_board(session, run, now)
    elif now >= window.end:
        transition_run(session, run, RunEvent.EXPIRE, now=now, actor=actor)
        post(session, run, messages.notice(run.name, "⌛", "expired: its window passed before "
                                           "it could start"), now)
    elif status is RunStatus.APPROVED:
        transition_run(session, run, RunEvent.SCHEDULE, now=now, actor=actor,
                       detail={"window_start": window.start.isoformat()})
