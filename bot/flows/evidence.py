"""Gather a run's evidence bundle from the database: what Polycom Global Services asks for."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import messages
from bot.config import Settings
from bot.engine.durations import say_duration
from bot.engine.states import RunStatus
from bot.messages.plain import plain
from bot.reports.evidence import build_zip
from bot.runs.pictures import timeline_png
from bot.runs.plans import plan_of
from bot.runs.waiting import window_of
from storage import repo
from storage.models import DmaRequest, Run, Step

# What "as last read" keeps of a cluster: the newest answer to each of these reads.
LAST_READ = {"/installed-software": "software", "/high-availability/status": "servers",
             "/status": "status", "/dma-supercluster": "supercluster",
             "/dma-supercluster/operation-status": "operation", "/territories": "territories"}


def evidence_zip(session: Session, run: Run, settings: Settings, now: datetime) -> bytes:
    """The run's evidence bundle as zip bytes."""
    steps = repo.steps_of(session=session, run_id=run.id)
    requests = repo.dma_requests_of(session=session, run_id=run.id)
    files: dict[str, bytes | str] = {
        "plan.txt": _plan_text(session, run, settings),
        "plan.json": _dump(dict(run.plan or {})),
        "audit.csv": _audit_csv(session, run),
        "audit.json": _dump([{"at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                              "step_id": e.step_id, "detail": e.detail}
                             for e in repo.audit_trail(session=session, run_id=run.id)]),
        "clusters.json": _dump(_clusters(run, steps, requests)),
        "dma-requests.jsonl": "".join(json.dumps(_request(r), ensure_ascii=False) + "\n"
                                      for r in requests),
        "timings.csv": _timings(run, steps, now),
        "escalations.json": _dump([
            {"cluster": e.cluster, "condition": e.condition, "at": e.created_at.isoformat(),
             "resolved_at": e.resolved_at.isoformat() if e.resolved_at else None,
             "resolved_by": e.resolved_by, "details": e.details}
            for e in repo.escalations_of(session=session, run_id=run.id)]),
        "timeline.png": timeline_png(session, run, now, max_parallel_installs=(
            settings.timing.max_parallel_installs)),
    }
    return build_zip(run.name, _summary(run, now), files, now)


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"


def _summary(run: Run, now: datetime) -> str:
    took = ((run.finished_at or now) - run.started_at).total_seconds() if run.started_at else 0
    return (f"{run.name}: {run.strategy} upgrade of {run.target} to {run.to_version}, "
            f"{RunStatus(run.status).words}; requested by {run.requester} at "
            f"{run.created_at.isoformat(timespec='seconds')}; "
            + (f"started {run.started_at.isoformat(timespec='seconds')}, ran "
               f"{say_duration(took)}" if run.started_at else "not started")
            + (f"; stopped: {run.pause_reason}" if run.pause_reason else ""))


def _plan_text(session: Session, run: Run, settings: Settings) -> str:
    slack, window = settings.slack, window_of(run)
    approvals = [a.user_id for a in repo.active_approvals(session=session, run_id=run.id,
                                                          kind="approve")]
    payload = messages.plan_message(
        run.name, plan_of(run), window=window.describe() if window else None,
        approvals_required=slack.approvals_required, approvers=slack.approvers,
        approve_reaction=slack.approve_reaction, reject_reaction=slack.reject_reaction,
        requester=run.requester, approvals=approvals)
    return plain(str(payload["text"])) + "\n"


def _audit_csv(session: Session, run: Run) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "actor", "action", "step_id", "detail"])
    for e in repo.audit_trail(session=session, run_id=run.id):
        writer.writerow([e.at.isoformat(), e.actor, e.action, e.step_id or "",
                         json.dumps(e.detail, ensure_ascii=False, default=str)])
    return out.getvalue()


def _request(r: DmaRequest) -> dict[str, Any]:
    return {"at": r.at.isoformat(), "cluster": r.cluster, "step_id": r.step_id,
            "method": r.method, "path": r.path, "status": r.status, "elapsed_ms": r.elapsed_ms,
            "request": r.request, "response": r.response, "error": r.error}


def _clusters(run: Run, steps: Sequence[Step],
              requests: Sequence[DmaRequest]) -> dict[str, Any]:
    plan = plan_of(run)
    before = dict(plan.from_versions)
    out: dict[str, Any] = {}
    for name in before:
        last: dict[str, Any] = {}
        for r in requests:  # oldest first: later answers overwrite earlier ones
            key = LAST_READ.get(r.path)
            if r.cluster == name and r.method == "GET" and key and r.status == 200:
                last[key] = {"at": r.at.isoformat(), "answer": _parsed(r.response)}
        out[name] = {
            "version_before": before[name], "target_version": run.to_version,
            "upgraded_in_this_run": name in plan.order,
            "steps": [{"key": s.key, "status": str(s.status), "phase": s.phase,
                       "started_at": s.started_at.isoformat() if s.started_at else None,
                       "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                       "attempts": s.attempts, "last_error": s.last_error, "data": s.data}
                      for s in steps if s.cluster == name],
            "last_read": last}
    return out


def _parsed(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text  # cut short by the redaction, or not JSON: kept as it came


def _timings(run: Run, steps: Sequence[Step], now: datetime) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["cluster", "step", "status", "started_at", "finished_at", "estimate_s",
                     "actual_s", "over_s"])
    totals: dict[str, list[float]] = {}
    for s in steps:
        actual = ((s.finished_at or now) - s.started_at).total_seconds() if s.started_at else None
        writer.writerow([s.cluster or run.target, s.key, str(s.status),
                         s.started_at.isoformat() if s.started_at else "",
                         s.finished_at.isoformat() if s.finished_at else "", round(s.estimate_s),
                         "" if actual is None else round(actual),
                         "" if actual is None else round(actual - s.estimate_s)])
        total = totals.setdefault(s.cluster or run.target, [0.0, 0.0])
        total[0] += s.estimate_s
        total[1] += actual or 0.0
    for cluster, (estimate, actual) in totals.items():
        writer.writerow([cluster, "(total of its steps)", "", "", "", round(estimate),
                         round(actual), round(actual - estimate)])
    return out.getvalue()
