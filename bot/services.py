"""The facade over the flows: one object the handlers, the CLI and the rehearsal are given.

Each method is one flow's method (bot/flows/); the facade only keeps the handlers' signatures
stable and the settings, clock and clients in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from bot.config import Settings
from bot.dma.client import DmaClient
from bot.engine.planner import Plan
from bot.engine.states import RunStatus
from bot.engine.windows import Window
from bot.flows.approvals import ApprovalResult, Approvals
from bot.flows.base import NoSuchRun, ServiceError
from bot.flows.controls import Controls
from bot.flows.events import Events
from bot.flows.planning import ClusterHealth, Planning, plan_timing
from bot.flows.queries import Queries
from bot.flows.recovery import Recovery
from bot.runs.views import RunSummary, summarize

__all__ = ["ApprovalResult", "ClusterHealth", "NoSuchRun", "RunSummary", "ServiceError",
           "Services", "plan_timing", "summarize"]


class Services:
    """The operations people ask for, whatever the surface."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], clock: Clock,
                 clients: Callable[[str], DmaClient]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.clients = clients
        parts = (settings, sessions, clock, clients)
        self.planning = Planning(*parts)
        self.approvals_flow = Approvals(*parts)
        self.controls = Controls(*parts)
        self.queries = Queries(*parts)
        self.events = Events(*parts)
        self.recovery = Recovery(*parts)

    # -- planning -------------------------------------------------------------------------------

    def inventory(self) -> list[ClusterHealth]:
        """Read every cluster of the inventory live."""
        return self.planning.inventory()

    def plan(self, target_name: str, version: str, strategy: str = "auto") -> Plan:
        """Compute the plan for a target from the clusters as they are now (read-only)."""
        return self.planning.plan(target_name, version, strategy)

    def submit(self, plan: Plan, *, requester: str, channel: str | None = None,
               window: Window | None = None, require_window: bool = True) -> str:
        """Store the plan as a run awaiting approval and post it; return the run's name."""
        return self.planning.submit(plan, requester=requester, channel=channel, window=window,
                                    require_window=require_window)

    # -- approvals ------------------------------------------------------------------------------

    def approve(self, ref: str | int, user: str, *, source: str = "cli",
                event_id: str | None = None,
                approvers: Collection[str] | None = None) -> ApprovalResult:
        """Count one approver's approval once; start or schedule the run at quorum."""
        return self.approvals_flow.approve(ref, user, source=source, event_id=event_id,
                                           approvers=approvers)

    def reject(self, ref: str | int, user: str, *, source: str = "cli",
               approvers: Collection[str] | None = None) -> ApprovalResult:
        """An approver's rejection ends the plan."""
        return self.approvals_flow.reject(ref, user, source=source, approvers=approvers)

    def withdraw(self, ref: str | int, user: str) -> ApprovalResult:
        """Take an approval back while the run has not started."""
        return self.approvals_flow.withdraw(ref, user)

    # -- controls -------------------------------------------------------------------------------

    def control(self, ref: str | int, action: str, user: str, *,
                approvers: Collection[str] | None = None) -> str:
        """Pause, resume, abort, retry or approve an overrun; return what happened."""
        return self.controls.control(ref, action, user, approvers=approvers)

    def acknowledge(self, ref: str | int, user: str) -> str:
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

    def active_runs(self) -> list[RunSummary]:
        """Runs that are not over yet, newest first."""
        return self.queries.active_runs()

    def history(self, target: str | None = None, limit: int = 10) -> list[RunSummary]:
        """The latest runs, of one supercluster or cluster."""
        return self.queries.history(target, limit)

    def awaiting_reactions(self) -> list[RunSummary]:
        """Posted plans that may still gain or lose approvals (re-read at start-up)."""
        return self.queries.awaiting_reactions()

    def approvals(self, ref: str | int, kind: str = "approve") -> list[tuple[str, str]]:
        """The approvals that count now, as (user, source), oldest first."""
        return self.queries.approvals(ref, kind)
