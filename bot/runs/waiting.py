"""Runs and windows: start, schedule or expire waiting runs; predict the finish; ask to overrun."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot import messages
from bot.clock import Clock
from bot.config import Settings
from bot.engine.durations import say_duration
from bot.engine.plans import StepKind
from bot.engine.slots import step_limits
from bot.engine.states import DONE_STEP, WAITING_RUN, RunEvent, RunStatus, StepStatus
from bot.engine.windows import StepProgress, Window, expired_unapproved, needs_overrun
from bot.engine.windows import remaining_seconds as _remaining
from bot.runs.checklist import missing, say_missing
from bot.runs.plans import plan_of
from bot.runs.posting import post, update_board
from bot.runs.transitions import transition_run
from storage import repo
from storage.db import unit_of_work
from storage.models import Run

log = logging.getLogger(__name__)


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
               for s in steps if s.status not in DONE_STEP}
    return _remaining(now=now, steps=progress, history=history,
                      max_parallel=step_limits(settings.timing.max_parallel_installs))


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


def housekeeping(sessions: sessionmaker[Session], clock: Clock, actor: str) -> None:
    """Start approved runs whose window has come, expire plans whose window is too short."""
    now = clock.now()
    with unit_of_work(sessions) as session:
        ids = session.scalars(select(Run.id).where(Run.status.in_(WAITING_RUN))).all()
    for run_id in ids:
        try:
            with unit_of_work(sessions) as session:
                # Another process advancing the same run holds its row: skip it, it is handled.
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
        estimate = plan_of(run).total_estimate_s
        if window and expired_unapproved(now=now, window=window, estimate_s=estimate):
            transition_run(session, run, RunEvent.EXPIRE, now=now, actor=actor)
            post(session, run, messages.notice(
                run.name, "⌛", "expired: still not approved, and the window no longer leaves "
                f"room for the estimated {say_duration(estimate)}"), now)
            update_board(session, run, now)
        return
    if window is None or window.contains(now):
        if waiting_for := missing(session, run):
            # The guide's manual items come first: no start until an operator acknowledged each.
            post(session, run, messages.notice(
                run.name, "☐", "approved; it starts once an operator has acknowledged: "
                f"{say_missing(waiting_for)}", actions=tuple(f"ack:{k}" for k in waiting_for)),
                now, key=f"{run.id}:checklist")
            return
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


def wake_moments(session: Session) -> dict[str, datetime]:
    """The moments waiting runs need the worker: window starts and approval deadlines.

    A scheduled run starts at its window's start; a plan still awaiting approval expires when
    its window no longer leaves room for its estimate. Keyed by a name that stays the same for
    the same moment of the same run (scheduler date jobs use it as their id).
    """
    moments: dict[str, datetime] = {}
    runs = session.scalars(select(Run).where(
        Run.status.in_((RunStatus.SCHEDULED, RunStatus.AWAITING_APPROVAL)),
        Run.window_start.is_not(None), Run.window_end.is_not(None))).all()
    for run in runs:
        window = window_of(run)
        assert window is not None
        if run.status is RunStatus.SCHEDULED:
            moments[f"window-start-R{run.id}"] = window.start
        else:
            estimate = timedelta(seconds=plan_of(run).total_estimate_s)
            moments[f"approval-deadline-R{run.id}"] = window.end - estimate
    return moments
