"""What a run posts: thread replies, and the status board that the plan message becomes.

Both are queued in the outbox inside the caller's unit of work: a Slack outage never blocks a
step, and a message is sent exactly when the change it reports is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import messages
from bot.engine.guide import CHECKLIST_SHORT
from bot.engine.plans import StepKind
from bot.engine.states import DONE_STEP, RunStatus, StepStatus
from bot.runs.checklist import acknowledgements
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Run, Step

# What the board says of a cluster whose step of this kind is under way...
BOARD_STATE: Mapping[StepKind, str] = {
    StepKind.BUSY_OUT: "busying out", StepKind.DRAIN: "draining",
    StepKind.OUT_OF_SERVICE: "out of service", StepKind.REMOVE: "leaving the supercluster",
    StepKind.INSTALL: "installing", StepKind.WAIT_LOGIN: "installing (restarting)",
    StepKind.VERIFY: "verifying", StepKind.LICENCE_KEYS: "licence keys",
    StepKind.JOIN: "joining", StepKind.RETURN_TO_SERVICE: "returning to service",
    StepKind.UPLOAD: "uploading package", StepKind.CHECK_TERRITORIES: "checking territories",
    StepKind.REASSIGN_TERRITORIES: "reassigning territories",
    StepKind.MOVE_TERRITORIES: "moving territories",
    StepKind.PEOPLE_WORK: "waiting for the people's work",
    StepKind.ROLLBACK: "rolling back", StepKind.ASSIGN_TERRITORIES: "assigning territories",
}
# ...and once it is done.
DONE_STATE: Mapping[StepKind, str] = {
    StepKind.VERIFY: "verified", StepKind.LICENCE_KEYS: "verified",
    StepKind.JOIN: "joined", StepKind.RETURN_TO_SERVICE: "in service",
    StepKind.CHECK_TERRITORIES: "in service", StepKind.UPLOAD: "package uploaded",
    StepKind.REMOVE: "stand-alone", StepKind.OUT_OF_SERVICE: "out of service",
    StepKind.DRAIN: "drained", StepKind.BUSY_OUT: "busied out",
    StepKind.MOVE_TERRITORIES: "in service", StepKind.INSTALL: "installing",
    StepKind.WAIT_LOGIN: "logged back in", StepKind.ROLLBACK: "rolling back",
}
STOPPED_STATE: Mapping[StepStatus, str] = {
    StepStatus.ESCALATED: "ESCALATED", StepStatus.FAILED: "FAILED", StepStatus.BLOCKED: "blocked"}


def post(session: Session, run: Run, payload: Mapping[str, Any], now: datetime,
         key: str | None = None) -> None:
    """Queue a reply in the run's thread (delivered by the outbox, never blocking a step)."""
    repo.enqueue_message(session=session, at=now, payload=dict(payload), channel=run.channel,
                         run_id=run.id, kind="post", thread=True, key=key)


# The files a run can upload: what -> (file name suffix, title words).
FILES: Mapping[str, tuple[str, str]] = {
    "timeline": ("timeline.png", "timeline"), "evidence": ("evidence.zip", "evidence bundle")}


def upload(session: Session, run: Run, what: str, now: datetime, *, comment: str,
           key: str | None = None) -> None:
    """Queue a file for the run's thread; the outbox renders it when it delivers it."""
    suffix, words = FILES[what]
    spec = {"what": what, "run": run.name, "filename": f"{run.name}-{suffix}",
            "title": f"{run.name} {words}"}
    repo.enqueue_message(session=session, at=now, payload={"text": comment, "file": spec},
                         channel=run.channel, run_id=run.id, kind="upload", thread=True,
                         key=key)


def update_board(session: Session, run: Run, now: datetime) -> None:
    """Queue an edit of the plan message into a status board (the outbox coalesces edits)."""
    steps = repo.steps_of(session=session, run_id=run.id)
    plan = plan_of(run)
    estimates = dict(plan.cluster_estimates)
    lines = [cluster_line(name, [s for s in steps if s.cluster == name], now,
                          estimates.get(name, 0.0)) for name in plan.order]
    elapsed = (now - run.started_at).total_seconds() if run.started_at else 0.0
    acked = acknowledgements(session, run)
    checklist = [f"☑ {CHECKLIST_SHORT[k]} {acked[k]}" if k in acked
                 else f"☐ {CHECKLIST_SHORT[k]}: not acknowledged" for k in plan.acknowledge]
    payload = messages.board_message(run.name, RunStatus(run.status), lines,
                                     elapsed_s=elapsed, estimate_s=plan.total_estimate_s,
                                     checklist=checklist)
    repo.enqueue_message(session=session, at=now, payload=payload, channel=run.channel,
                         run_id=run.id, kind="update")


def cluster_line(name: str, steps: Sequence[Step], now: datetime,
                 estimate: float) -> messages.ClusterLine:
    """One cluster's line on the board: its phase now, and the time its steps took so far."""
    state = "waiting"
    for step in steps:
        kind, status = StepKind(step.kind), StepStatus(step.status)
        if status in STOPPED_STATE:
            state = STOPPED_STATE[status]
            break
        if status is StepStatus.ACTIVE:
            state = BOARD_STATE.get(kind, kind.value.replace("_", " "))
            break
        if status in DONE_STEP:
            state = DONE_STATE.get(kind, state)
    elapsed = sum(((s.finished_at or now) - s.started_at).total_seconds()
                  for s in steps if s.started_at)
    return messages.ClusterLine(name, state, elapsed, estimate)
