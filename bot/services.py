"""The facade over the flows: one object the handlers, the CLI and the rehearsal are given.

Each method is one flow's method (bot/flows/); the facade only keeps the handlers' signatures
stable and the settings, clock and clients in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.engine.planner import Plan
from bot.engine.states import RunStatus
from bot.engine.windows import Window
from bot.flows.approvals import HANDLED, ApprovalResult, Approvals
from bot.flows.base import NoSuchRun, ServiceError
from bot.flows.checklist import Checklist
from bot.flows.checks import Checks
from bot.flows.controls import Controls
from bot.flows.events import Events
from bot.flows.planning import ClusterHealth, Planning, plan_timing
from bot.flows.queries import Queries
from bot.flows.recovery import Recovery
from bot.flows.reports import Reports
from bot.flows.staging import StagedCluster, Staging
from bot.runs.checks import CheckResult
from bot.runs.views import AuditLine, RunSummary, summarize

__all__ = ["HANDLED", "ApprovalResult", "AuditLine", "ClusterHealth", "NoSuchRun", "RunSummary",
           "ServiceError", "Services", "StagedCluster", "plan_timing", "summarize"]


class Services:
    """The operations people ask for, whatever the surface."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], clock: Clock,
                 clients: Callable[[str], DmaClient],
                 pause: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.pause = pause  # how staging waits between looks (the clock's advance in tests)
        self.sessions = sessions
        self.clock = clock
        self.clients = clients
        parts = (settings, sessions, clock, clients)
        self.planning = Planning(*parts)
        self.approvals_flow = Approvals(*parts)
        self.controls = Controls(*parts)
        self.queries = Queries(*parts)
        self.events = Events(*parts)
        self.checklist = Checklist(*parts)
        self.staging = Staging(*parts)
        self.recovery = Recovery(*parts)
        self.reports = Reports(*parts)
        self.checks = Checks(*parts)

    # -- planning -------------------------------------------------------------------------------

    def inventory(self) -> list[ClusterHealth]:
        """Read every cluster of the inventory live."""
        return self.planning.inventory()

    def plan(self, target_name: str, version: str, strategy: str = "auto", *,
             emergency: bool = False) -> Plan:
        """Compute the plan for a target from the clusters as they are now (read-only)."""
        return self.planning.plan(target_name, version, strategy, emergency=emergency)

    def submit(self, plan: Plan, *, requester: str, channel: str | None = None,
               window: Window | None = None, require_window: bool = True) -> str:
        """Store the plan as a run awaiting approval and post it; return the run's name."""
        return self.planning.submit(plan, requester=requester, channel=channel, window=window,
                                    require_window=require_window)

    def stage(self, target_name: str, version: str, user: str, *,
              pause: Callable[[float], None] | None = None) -> list[StagedCluster]:
        """Upload and check the package on every cluster of a target, ahead of the window."""
        return self.staging.stage(target_name, version, user, pause=pause or self.pause)

    # -- approvals ------------------------------------------------------------------------------

    def approve(self, ref: str | int, user: str, *, source: str = "cli",
                event_id: str | None = None,
                approvers: Collection[str] | None = None) -> ApprovalResult:
        """Count one approver's approval once; start or schedule the run at quorum."""
        return self.approvals_flow.approve(ref, user, source=source, event_id=event_id,
                                           approvers=approvers)

    def reject(self, ref: str | int, user: str, *, source: str = "cli",
               approvers: Collection[str] | None = None,
               event_id: str | None = None) -> ApprovalResult:
        """An approver's rejection ends the plan."""
        return self.approvals_flow.reject(ref, user, source=source, approvers=approvers,
                                          event_id=event_id)

    def withdraw(self, ref: str | int, user: str, *,
                 event_id: str | None = None) -> ApprovalResult:
        """Take an approval back while the run has not started."""
        return self.approvals_flow.withdraw(ref, user, event_id=event_id)

    def acknowledge(self, ref: str | int, item: str, user: str) -> str:
        """An operator acknowledges one manual checklist item (who and when are audited)."""
        return self.checklist.acknowledge(ref, item, user)

    # -- controls -------------------------------------------------------------------------------

    def control(self, ref: str | int, action: str, user: str, *,
                approvers: Collection[str] | None = None) -> str:
        """Pause, resume, abort, retry or approve an overrun; return what happened."""
        return self.controls.control(ref, action, user, approvers=approvers)

    def acknowledge_escalation(self, ref: str | int, user: str) -> str:
        """Acknowledge a run's open escalations (on-call, operators, approvers)."""
        return self.controls.acknowledge(ref, user)

    # -- recovery -------------------------------------------------------------------------------

    def rollback(self, ref: str | int, cluster: str, *, requester: str,
                 channel: str | None = None) -> tuple[str, Plan]:
        """Plan one cluster's rollback (linked to the run it recovers) and post it."""
        return self.recovery.rollback(ref, cluster, requester=requester, channel=channel)

    def restore(self, ref: str | int, *, requester: str,
                channel: str | None = None) -> tuple[str, Plan]:
        """Plan the way back to a served network after a run, and post it."""
        return self.recovery.restore(ref, requester=requester, channel=channel)

    def cluster_of_step(self, ref: str | int, step_id: int) -> str:
        """The cluster of a run's step (for the Roll back button)."""
        return self.recovery.cluster_of_step(ref, step_id)

    # -- queries --------------------------------------------------------------------------------

    def run_status(self, ref: str | int) -> tuple[RunStatus, list[tuple[str, str, str]]]:
        """A run's status and its steps as (key, status, note) rows."""
        return self.queries.run_status(ref)

    def summary(self, ref: str | int) -> RunSummary:
        """One run's summary; NoSuchRun when there is no such run."""
        return self.queries.summary(ref)

    def run_for_message(self, channel: str, ts: str) -> RunSummary | None:
        """The run whose plan message is `ts` in `channel`, if any."""
        return self.queries.run_for_message(channel, ts)

    def is_message_of(self, run: RunSummary, channel: str, ts: str) -> bool:
        """Tell whether `ts` in `channel` is the run's plan message or one posted for it."""
        return self.queries.is_message_of(run, channel, ts)

    def active_runs(self) -> list[RunSummary]:
        """Runs that are not over yet, newest first."""
        return self.queries.active_runs()

    def history(self, target: str | None = None, limit: int = 10) -> list[RunSummary]:
        """The latest runs, of one supercluster or cluster."""
        return self.queries.history(target, limit)

    def awaiting_reactions(self) -> list[RunSummary]:
        """Posted plans that may still gain or lose approvals (re-read at start-up)."""
        return self.queries.awaiting_reactions()

    def audit(self, ref: str | int) -> tuple[RunSummary, list[AuditLine]]:
        """A run and its audit trail, oldest first (who approved what and when, every change)."""
        return self.queries.audit(ref)

    def approvals(self, ref: str | int, kind: str = "approve") -> list[tuple[str, str]]:
        """The approvals that count now, as (user, source), oldest first."""
        return self.queries.approvals(ref, kind)

    # -- files ----------------------------------------------------------------------------------

    def timeline(self, ref: str | int) -> tuple[str, bytes]:
        """The run's name and its timeline picture (PNG bytes)."""
        return self.reports.timeline(ref)

    def evidence(self, ref: str | int) -> tuple[str, bytes]:
        """The run's name and its evidence bundle (zip bytes)."""
        return self.reports.evidence(ref)

    def render_file(self, spec: Mapping[str, Any]) -> bytes:
        """The file an upload in the outbox describes (the Slack sink calls this)."""
        return self.reports.render(spec)

    def render_board(self, run_id: int) -> dict[str, Any] | None:
        """The status board an edit in the outbox stands for, drawn now (the deliverer calls)."""
        return self.reports.board(run_id)

    def request_evidence(self, ref: str | int, user: str) -> str:
        """Queue the run's evidence bundle for its thread; return the run's name."""
        return self.reports.request_evidence(ref, user)

    def verify(self, target: str, user: str, channel: str | None = None) -> CheckResult:
        """Run the final checks of a target now, read-only, and post the result."""
        return self.checks.verify(target, user, channel)
