"""Runs as people see them in status, history, the Home tab and button guards (read models)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.states import RunStatus
from bot.runs.waiting import window_of
from storage.models import AuditEntry, Run


@dataclass(frozen=True)
class RunSummary:
    """A run as people see it in status, history and the Home tab."""

    id: int
    name: str
    target: str
    to_version: str
    strategy: str
    status: RunStatus
    requester: str
    channel: str | None
    message_ts: str | None
    window: str | None
    pause_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    clusters: tuple[str, ...]


def summarize(run: Run) -> RunSummary:
    """The summary of a stored run."""
    window = window_of(run)
    return RunSummary(id=run.id, name=run.name, target=run.target, to_version=run.to_version,
                      strategy=run.strategy, status=RunStatus(run.status),
                      requester=run.requester, channel=run.channel, message_ts=run.message_ts,
                      window=window.describe() if window else None,
                      pause_reason=run.pause_reason, created_at=run.created_at,
                      started_at=run.started_at, finished_at=run.finished_at,
                      clusters=tuple((run.plan or {}).get("order", ())))


@dataclass(frozen=True)
class AuditLine:
    """One entry of a run's audit trail: when, who, what (and on which step)."""

    at: datetime
    actor: str
    action: str
    step: str | None
    detail: dict[str, Any]

    def as_record(self) -> dict[str, Any]:
        """The entry as plain values (the CLI's JSON and CSV exports)."""
        return {"at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "step": self.step, "detail": dict(self.detail)}


def audit_line(entry: AuditEntry, steps: dict[int, str]) -> AuditLine:
    """An audit entry as people read it."""
    detail = dict(entry.detail or {})
    step = steps.get(entry.step_id) if entry.step_id is not None else None
    return AuditLine(at=entry.at, actor=entry.actor, action=entry.action,
                     step=step or detail.get("step"), detail=detail)
