"""Gather a run's timeline from the database into the values `bot.reports.timeline` draws."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from bot.engine.plans import StepKind
from bot.engine.schedule import schedule_estimate
from bot.engine.states import RunStatus
from bot.reports.timeline import Mark, Row, Span, Timeline, render_png
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Run, Step

# The phase each step kind belongs to on the picture.
PHASE_OF: Mapping[StepKind, str] = {
    StepKind.PREFLIGHT: "check", StepKind.UPLOAD: "prepare",
    StepKind.RECORD_TERRITORIES: "prepare", StepKind.REASSIGN_TERRITORIES: "prepare",
    StepKind.BUSY_OUT: "drain", StepKind.DRAIN: "drain",
    StepKind.OUT_OF_SERVICE: "out of service", StepKind.REMOVE: "out of service",
    StepKind.INSTALL: "install", StepKind.WAIT_LOGIN: "install",
    StepKind.VERIFY: "verify", StepKind.LICENCE_KEYS: "verify", StepKind.JOIN: "join",
    StepKind.MOVE_TERRITORIES: "back in service",
    StepKind.RESTORE_TERRITORIES: "back in service",
    StepKind.RETURN_TO_SERVICE: "back in service", StepKind.CHECK_TERRITORIES: "check",
    StepKind.FINAL_CHECK: "check",
}
# Gaps shorter than this between two spans of one phase are drawn as one bar.
JOIN_GAP = timedelta(seconds=90)


def timeline_of(session: Session, run: Run, now: datetime, *,
                max_parallel_installs: int = 3) -> Timeline:
    """The timeline of a run as stored now."""
    plan = plan_of(run)
    steps = repo.steps_of(session=session, run_id=run.id)
    origin = run.started_at or run.window_start or run.created_at
    _, planned_at = schedule_estimate(plan.steps,
                                      max_parallel={StepKind.INSTALL: max_parallel_installs})
    end = run.finished_at or now
    rows = []
    # A stand-alone cluster's run-wide steps (pre-flight) belong on its own row.
    alone = plan.target_kind == "cluster"
    for name in (*plan.order, *(() if alone else (None,))):
        mine = [s for s in steps if s.cluster == name or (alone and s.cluster is None)]
        if not mine:
            continue
        planned = _merge(Span(PHASE_OF[StepKind(s.kind)],
                              origin + timedelta(seconds=planned_at[s.key][0]),
                              origin + timedelta(seconds=planned_at[s.key][1]))
                         for s in mine if s.key in planned_at)
        actual = _merge(Span(PHASE_OF[StepKind(s.kind)], s.started_at, s.finished_at or end)
                        for s in mine if s.started_at is not None)
        rows.append(Row(name or plan.target, planned, actual))
    marks = tuple(Mark(e.created_at, e.cluster, e.condition.replace("_", " "))
                  for e in repo.escalations_of(session=session, run_id=run.id))
    status = RunStatus(run.status).words
    title = (f"{run.name}: {plan.strategy.value} upgrade of {run.target} to {run.to_version} "
             f"({status})")
    window = ((run.window_start, run.window_end)
              if run.window_start is not None and run.window_end is not None else None)
    return Timeline(title=title, rows=tuple(rows), now=end, tz=run.window_tz or "UTC",
                    outage=_outage(steps, end), window=window, escalations=marks)


def timeline_png(session: Session, run: Run, now: datetime, *,
                 max_parallel_installs: int = 3) -> bytes:
    """The run's timeline picture as PNG bytes."""
    return render_png(timeline_of(session, run, now, max_parallel_installs=max_parallel_installs))


def _merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Join spans of the same phase that touch or nearly touch (one bar per phase stretch)."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: s.start):
        last = merged[-1] if merged else None
        if last is not None and last.phase == span.phase and span.start - last.end <= JOIN_GAP:
            merged[-1] = Span(last.phase, last.start, max(last.end, span.end))
        else:
            merged.append(span)
    return tuple(merged)


def _outage(steps: Iterable[Step], end: datetime) -> tuple[datetime, datetime] | None:
    """From the first cluster taken out of service to the last one back (or now)."""
    steps = list(steps)
    offs = [s.started_at for s in steps
            if s.kind == StepKind.OUT_OF_SERVICE and s.started_at is not None]
    if not offs:
        return None
    backs = [s for s in steps if s.kind == StepKind.RETURN_TO_SERVICE]
    if backs and all(s.finished_at is not None for s in backs):
        return min(offs), max(s.finished_at for s in backs if s.finished_at is not None)
    return min(offs), end
