"""The status board: what each cluster is doing, when it should end, and the run's facts.

Built from the run's steps, approvals and escalations inside the caller's unit of work; the
outbox coalesces the edits. Expected ends are list-scheduled from now on the steps' estimates
(a step past its estimate keeps a tenth of it, as in the overrun prediction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.config import TimingSettings
from bot.engine.guide import CHECKLIST_SHORT
from bot.engine.plans import StepKind
from bot.engine.states import DONE_STEP, RunStatus, StepStatus
from bot.engine.windows import StepProgress, covered_seconds, step_ends
from bot.messages.board import BoardEscalation, BoardFacts, ClusterLine, board_message
from bot.runs.checklist import acknowledgements
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Run, Step

# The board knows no settings; the default install limit is the planner's usual one.
_MAX_PARALLEL = {StepKind.INSTALL: TimingSettings().max_parallel_installs}
# A cluster is out of service from the first of these steps starting...
_OUT_FROM = (StepKind.BUSY_OUT, StepKind.OUT_OF_SERVICE, StepKind.INSTALL)
# ...until the first of these ends (stand-alone clusters have no return-to-service step).
_BACK_AT = (StepKind.RETURN_TO_SERVICE, StepKind.VERIFY)

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


def board_payload(session: Session, run: Run, now: datetime) -> dict[str, Any]:
    """The status board of a run as it stands now."""
    steps = repo.steps_of(session=session, run_id=run.id)
    plan = plan_of(run)
    estimates = dict(plan.cluster_estimates)
    running = run.status in (RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.ESCALATED,
                             RunStatus.AWAITING_OVERRUN)
    ends = _step_ends(steps, now) if running else {}
    lines = [cluster_line(name, [s for s in steps if s.cluster == name], now,
                          estimates.get(name, 0.0), ends) for name in plan.order]
    elapsed = (now - run.started_at).total_seconds() if run.started_at else 0.0
    approvals = repo.active_approvals_by_kind(session=session, run_id=run.id)
    facts = BoardFacts(
        tz=run.window_tz or "UTC", now=now, expected_end=max(ends.values(), default=None),
        window_end=run.window_end, outage_s=_outage(steps, now) if run.started_at else None,
        approvals=[(a.user_id, a.created_at) for a in approvals.get("approve", ())],
        escalations=[BoardEscalation(e.cluster, e.condition, e.created_at, e.acknowledged_by,
                                     e.acknowledged_at, e.resolved_at is not None)
                     for e in repo.escalations_of(session=session, run_id=run.id)])
    acked = acknowledgements(session, run, approvals)
    checklist = [f"☑ {CHECKLIST_SHORT[k]} {acked[k]}" if k in acked
                 else f"☐ {CHECKLIST_SHORT[k]}: not acknowledged" for k in plan.acknowledge]
    return board_message(run.name, RunStatus(run.status), lines, elapsed_s=elapsed,
                         estimate_s=plan.total_estimate_s, facts=facts, checklist=checklist)


def _step_ends(steps: Sequence[Step], now: datetime) -> dict[str, datetime]:
    progress = [StepProgress(key=s.key, kind=StepKind(s.kind), deps=tuple(s.deps or ()),
                             status=StepStatus(s.status), estimate_s=s.estimate_s,
                             started_at=s.started_at) for s in steps]
    # From the estimates only: the board is edited at every phase, and one history query per
    # step each time would cost more than the step itself (the overrun check uses history).
    _, ends = step_ends(now=now, steps=progress, history={}, max_parallel=_MAX_PARALLEL)
    return {key: now + timedelta(seconds=end) for key, end in ends.items()}


def _outage(steps: Sequence[Step], now: datetime) -> float:
    """Seconds so far with at least one cluster out of service (busied out, out, restarting)."""
    spans: list[tuple[datetime, datetime | None]] = []
    for name in {s.cluster for s in steps if s.cluster}:
        mine = [s for s in steps if s.cluster == name]
        starts = [s.started_at for s in mine if s.kind in _OUT_FROM and s.started_at]
        if not starts:
            continue
        back_kind = next(k for k in (*_BACK_AT, None) if k is None
                         or any(s.kind == k for s in mine))
        back = next((s.finished_at for s in mine if s.kind == back_kind
                     and s.status is StepStatus.DONE), None)
        spans.append((min(starts), back))
    return covered_seconds(spans, now)


def cluster_line(name: str, steps: Sequence[Step], now: datetime, estimate: float,
                 ends: Mapping[str, datetime] | None = None) -> ClusterLine:
    """One cluster's line: its phase now, time taken so far, its end, and whether overdue."""
    state, overdue = "waiting", None
    for step in steps:
        kind, status = StepKind(step.kind), StepStatus(step.status)
        if status in STOPPED_STATE:
            state = STOPPED_STATE[status]
            break
        if status is StepStatus.ACTIVE:
            state = BOARD_STATE.get(kind, kind.value.replace("_", " "))
            overdue = (step.data or {}).get("overdue")
            break
        if status in DONE_STEP:
            state = DONE_STATE.get(kind, state)
    elapsed = sum(((s.finished_at or now) - s.started_at).total_seconds()
                  for s in steps if s.started_at)
    finished = [s.finished_at for s in steps]
    done = bool(steps) and all(s.status in DONE_STEP for s in steps)
    mine = [(ends or {}).get(s.key) for s in steps]
    return ClusterLine(name, state, elapsed, estimate,
                       expected_end=max((e for e in mine if e), default=None),
                       finished_at=max((f for f in finished if f), default=None) if done
                       else None, overdue=overdue)
