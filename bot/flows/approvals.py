"""Approvals: count an approver once, reject a plan, withdraw an approval before the start."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot import messages
from bot.engine.states import APPROVABLE, RunEvent, RunStatus, run_may
from bot.flows.base import Flow
from bot.flows.events import record_in
from bot.flows.planning import approvals_required, plan_payload
from bot.runs.posting import post
from bot.runs.transitions import transition_run
from bot.runs.waiting import advance_waiting_run
from storage import repo
from storage.db import unit_of_work
from storage.models import Run

HANDLED = "already handled"  # a retry of an event whose effect is committed


@dataclass(frozen=True)
class ApprovalResult:
    """What an approval, rejection or withdrawal did."""

    counted: bool
    status: RunStatus
    approvals: int
    required: int
    reason: str = ""


class Approvals(Flow):
    """The approvers' gestures on a plan, whatever the surface (reaction, button, CLI)."""

    def approve(self, ref: str | int, user: str, *, source: str = "cli",
                event_id: str | None = None,
                approvers: Collection[str] | None = None) -> ApprovalResult:
        """Count one approver's approval once; start or schedule the run at quorum."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            required = approvals_required(run, self.settings.slack)
            count = len(repo.active_approvals(session=session, run_id=run.id, kind="approve"))
            if not record_in(session, event_id, "reaction_added", now):
                return ApprovalResult(False, run.status, count, required, HANDLED)
            reason = self._cannot_approve(run, user, self._allowed(approvers))
            if reason:
                return ApprovalResult(False, run.status, count, required, reason)
            if not repo.set_approval(session=session, run_id=run.id, user_id=user,
                                     kind="approve", source=source, event_id=event_id, at=now):
                return ApprovalResult(False, run.status, count, required, "already counted")
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action="approval.given", detail={"source": source, "event_id": event_id})
            count += 1
            if count >= required:
                transition_run(session, run, RunEvent.APPROVE, now=now, actor=user)
                advance_waiting_run(session, run, now, user)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, count, required)

    def reject(self, ref: str | int, user: str, *, source: str = "cli",
               approvers: Collection[str] | None = None,
               event_id: str | None = None) -> ApprovalResult:
        """An approver's rejection ends the plan."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            required = approvals_required(run, self.settings.slack)
            if not record_in(session, event_id, "reaction_added", now):
                return ApprovalResult(False, run.status, 0, required, HANDLED)
            if user not in self._allowed(approvers):
                return ApprovalResult(False, run.status, 0, required,
                                      "only configured approvers can reject")
            if run.status not in APPROVABLE:
                return ApprovalResult(False, run.status, 0, required,
                                      f"{run.name} has started or ended; use abort")
            if run_may(run.status, RunEvent.WITHDRAW):  # approved: back to waiting, then out
                transition_run(session, run, RunEvent.WITHDRAW, now=now, actor=user)
            transition_run(session, run, RunEvent.REJECT, now=now, actor=user,
                           detail={"source": source})
            post(session, run, messages.notice(
                run.name, "🛑", f"rejected by {messages.mention(user)}"), now)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, 0, required)

    def withdraw(self, ref: str | int, user: str, *,
                 event_id: str | None = None) -> ApprovalResult:
        """Take an approval back while the run has not started."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self.lock(session, ref)
            required = approvals_required(run, self.settings.slack)
            if not record_in(session, event_id, "reaction_removed", now):
                return ApprovalResult(False, run.status, 0, required, HANDLED)
            if run.status not in APPROVABLE:
                return ApprovalResult(False, run.status, 0, required, "the run has started")
            if not repo.withdraw_approval(session=session, run_id=run.id, user_id=user,
                                          kind="approve", at=now):
                return ApprovalResult(False, run.status, 0, required, "no approval to withdraw")
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action="approval.withdrawn")
            count = len(repo.active_approvals(session=session, run_id=run.id, kind="approve"))
            if count < required and run_may(run.status, RunEvent.WITHDRAW):
                transition_run(session, run, RunEvent.WITHDRAW, now=now, actor=user)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, count, required)

    def _allowed(self, approvers: Collection[str] | None) -> set[str]:
        """The approvers' user ids (groups already expanded by the caller), else the config's."""
        return set(approvers if approvers is not None else self.settings.slack.approvers)

    @staticmethod
    def _cannot_approve(run: Run, user: str, allowed: set[str]) -> str:
        if not run_may(run.status, RunEvent.APPROVE):
            return f"{run.name} is {RunStatus(run.status).words}; it takes no approval now"
        if user == run.requester:
            return "the requester's own approval does not count"
        if user not in allowed:
            return "only configured approvers can approve"
        return ""

    def _refresh_plan(self, session: Session, run: Run, now: datetime) -> None:
        repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                             kind="update", payload=plan_payload(session, run,
                                                                 self.settings.slack))
