"""Use cases shared by the CLI, the rehearsal and the Slack handlers: plan, approve, control runs.

Each public method is one unit of work: it opens a session, changes state through the state
machine, writes the audit trail and queues messages, and commits. Cluster calls happen only in
`plan` and `inventory` (reads); everything that changes a cluster is left to the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot import messages
from bot.clock import Clock
from bot.config import Settings, Target
from bot.dma.client import DmaClient
from bot.dma.errors import DmaError
from bot.engine.errors import UserError
from bot.engine.planner import (
    ClusterFacts,
    Plan,
    PlanningError,
    PlanRequest,
    PlanTiming,
    Strategy,
    TerritoryFacts,
    make_plan,
    plan_from_json,
    plan_to_json,
)
from bot.engine.states import (
    ACTIVE_RUN,
    APPROVABLE,
    RunEvent,
    RunStatus,
    StepEvent,
    StepStatus,
)
from bot.engine.versions import parse_version
from bot.engine.windows import Window
from bot.worker import lifecycle
from storage import repo
from storage.db import unit_of_work
from storage.models import Run


class ServiceError(UserError):
    """A request that cannot be done, with a message for the person who asked."""


@dataclass(frozen=True)
class ClusterHealth:
    """One cluster as read live for `inventory`."""

    name: str
    supercluster: str | None
    servers_expected: int
    version: str | None
    servers_up: int
    uploaded: str | None
    problem: str | None


@dataclass(frozen=True)
class ApprovalResult:
    """What an approval, rejection or withdrawal did."""

    counted: bool
    status: str
    approvals: int
    required: int
    reason: str = ""


@dataclass(frozen=True)
class RunSummary:
    """A run as people see it in status, history and the Home tab."""

    id: int
    name: str
    target: str
    to_version: str
    strategy: str
    status: str
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
    window = lifecycle.window_of(run)
    return RunSummary(id=run.id, name=run.name, target=run.target, to_version=run.to_version,
                      strategy=run.strategy, status=run.status, requester=run.requester,
                      channel=run.channel, message_ts=run.message_ts,
                      window=window.describe() if window else None,
                      pause_reason=run.pause_reason, created_at=run.created_at,
                      started_at=run.started_at, finished_at=run.finished_at,
                      clusters=tuple((run.plan or {}).get("order", ())))


def plan_timing(settings: Settings) -> PlanTiming:
    """The planner's timing from the configured one."""
    t = settings.timing
    return PlanTiming(install_estimate_s=t.install_estimate.total_seconds(),
                      login_grace_s=t.login_grace.total_seconds(),
                      join_estimate_s=t.join_estimate.total_seconds(),
                      leave_estimate_s=t.leave_estimate.total_seconds(),
                      drain_estimate_s=t.drain_estimate.total_seconds(),
                      max_parallel_installs=t.max_parallel_installs)


class Services:
    """The operations people ask for, whatever the surface."""

    def __init__(self, *, settings: Settings, sessions: sessionmaker[Session], clock: Clock,
                 clients: Callable[[str], DmaClient]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.clients = clients

    # -- reading the clusters ---------------------------------------------------------------

    def inventory(self) -> list[ClusterHealth]:
        """Read every cluster of the inventory live: version, servers up, uploaded package."""
        rows = []
        for spec in self.settings.all_clusters():
            sc = self.settings.supercluster_of(spec.name)
            try:
                sw = self.clients(spec.name).installed_software()
                ha = self.clients(spec.name).ha_status()
                up = sum(1 for n in ha.nodes if n.state == "UP")
                problem = None if up >= spec.servers else f"{up} of {spec.servers} servers up"
                rows.append(ClusterHealth(spec.name, sc.name if sc else None, spec.servers,
                                          sw.system_version, up, sw.upgrade_version, problem))
            except DmaError as exc:
                rows.append(ClusterHealth(spec.name, sc.name if sc else None, spec.servers,
                                          None, 0, None, str(exc)))
        return rows

    def _facts(self, target: Target) -> tuple[tuple[ClusterFacts, ...],
                                              tuple[TerritoryFacts, ...]]:
        clusters = []
        for spec in target.clusters:
            try:
                sw = self.clients(spec.name).installed_software()
            except DmaError as exc:
                raise ServiceError(f"cannot read {spec.name}: {exc}") from exc
            clusters.append(ClusterFacts(name=spec.name, servers=spec.servers,
                                         version=sw.system_version,
                                         estimated_install_minutes=sw.estimated_install_minutes,
                                         upgrade_version=sw.upgrade_version))
        territories: tuple[TerritoryFacts, ...] = ()
        if target.kind == "supercluster":
            try:
                found = self.clients(target.clusters[0].name).territories()
            except DmaError as exc:
                raise ServiceError(f"cannot read the territories of {target.name}: {exc}") from exc
            territories = tuple(TerritoryFacts(t.territory_id, t.name, t.primary, t.backup,
                                               t.conference_room_host) for t in found)
        return tuple(clusters), territories

    def plan(self, target_name: str, version: str, strategy: str = "auto") -> Plan:
        """Compute the plan for a target from the clusters as they are now (read-only)."""
        target = self.settings.target(target_name)
        try:
            parse_version(version)
            wanted = Strategy(strategy)
        except ValueError as exc:
            raise ServiceError(str(exc) if "version" in str(exc).lower() else
                               f"unknown strategy {strategy!r}; expected one of: "
                               + ", ".join(s.value for s in Strategy)) from exc
        clusters, territories = self._facts(target)
        if version not in self.settings.packages and not all(
                c.upgrade_version == version or c.version == version for c in clusters):
            known = ", ".join(sorted(self.settings.packages)) or "none"
            raise ServiceError(f"no package for {version} in the config (packages: {known}) and "
                               "it is not uploaded on every cluster")
        request = PlanRequest(target=target.name, target_kind=target.kind, clusters=clusters,
                              territories=territories, to_version=version, strategy=wanted,
                              timing=plan_timing(self.settings))
        try:
            return make_plan(request)
        except PlanningError as exc:
            raise ServiceError(str(exc)) from exc

    # -- plans and approvals ----------------------------------------------------------------

    def submit(self, plan: Plan, *, requester: str, channel: str | None = None,
               window: Window | None = None, require_window: bool = True) -> str:
        """Store the plan as a run awaiting approval and post it; return the run's name."""
        if plan.needs_window and window is None and require_window:
            raise ServiceError(f"a {plan.strategy.value} upgrade is a complete outage: give a "
                               "maintenance window, e.g. window=2026-11-28T22:00/4h "
                               "tz=America/Chicago")
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            self._refuse_overlap(session, plan)
            run = repo.add_run(
                session=session, target=plan.target, target_kind=plan.target_kind,
                to_version=plan.to_version, strategy=plan.strategy.value,
                strategy_reason=" ".join(plan.reasons), status=RunStatus.PLANNED.value,
                requester=requester, channel=channel or self.settings.slack.channel,
                plan=plan_to_json(plan), plan_digest=plan.digest,
                window_start=window.start if window else None,
                window_end=window.end if window else None,
                window_tz=window.tz if window else None, created_at=now, updated_at=now)
            repo.add_steps(session=session, run=run, steps=[
                {"seq": i, "key": s.key, "kind": s.kind.value, "cluster": s.cluster,
                 "deps": list(s.deps), "params": {k: v if isinstance(v, str) else list(v)
                                                  for k, v in s.params},
                 "estimate_s": s.estimate_s, "title": s.title, "safe_point": s.safe_point}
                for i, s in enumerate(plan.steps)])
            repo.audit(session=session, at=now, actor=requester, run_id=run.id,
                       action="run.planned", detail={"digest": plan.digest,
                                                     "strategy": plan.strategy.value})
            lifecycle.transition_run(session, run, RunEvent.SUBMIT, now=now, actor=requester)
            repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                                 kind="post", key=f"{run.id}:plan",
                                 payload=self.plan_payload(session, run))
            return run.name

    @staticmethod
    def _refuse_overlap(session: Session, plan: Plan) -> None:
        """Refuse a plan whose clusters another unfinished run still holds."""
        wanted = set(plan.order)
        for other in repo.list_runs(session=session, statuses=[s.value for s in ACTIVE_RUN],
                                    limit=500):
            held = set((other.plan or {}).get("order", ())) or {other.target}
            if held & wanted or other.target == plan.target:
                raise ServiceError(
                    f"{other.name} ({other.target}, {other.status.replace('_', ' ')}) still holds "
                    f"{', '.join(sorted(held & wanted)) or other.target}: let it finish, or "
                    f"`/upgrade abort {other.name}` first")

    def plan_payload(self, session: Session, run: Run) -> dict[str, Any]:
        """The plan message of a run, with its approvals so far."""
        slack = self.settings.slack
        window = lifecycle.window_of(run)
        approvals = [a.user_id for a in repo.active_approvals(session=session, run_id=run.id,
                                                              kind="approve")]
        return messages.plan_message(
            run.name, plan_from_json(run.plan), window=window.describe() if window else None,
            approvals_required=slack.approvals_required, approvers=slack.approvers,
            approve_reaction=slack.approve_reaction, reject_reaction=slack.reject_reaction,
            requester=run.requester, approvals=approvals,
            status=run.status.replace("_", " "))

    def _run(self, session: Session, ref: str | int) -> Run:
        run = repo.get_run(session=session, ref=ref)
        if run is None:
            raise ServiceError(f"no run {ref}; runs are named R1, R2, … (`/upgrade history`)")
        return run

    def _locked(self, session: Session, ref: str | int) -> Run:
        """The run, locked: approvals and controls of one run happen one after the other."""
        run = repo.lock_run(session=session, ref=ref)
        if run is None:
            raise ServiceError(f"no run {ref}; runs are named R1, R2, … (`/upgrade history`)")
        return run

    def approve(self, ref: str | int, user: str, *, source: str = "cli",
                event_id: str | None = None,
                approvers: Collection[str] | None = None) -> ApprovalResult:
        """Count one approver's approval once; start or schedule the run at quorum."""
        now = self.clock.now()
        required = self.settings.slack.approvals_required
        allowed = set(approvers if approvers is not None else self.settings.slack.approvers)
        with unit_of_work(self.sessions) as session:
            run = self._locked(session, ref)
            count = len(repo.active_approvals(session=session, run_id=run.id, kind="approve"))
            reason = self._cannot_approve(run, user, allowed)
            if reason:
                return ApprovalResult(False, run.status, count, required, reason)
            counted = repo.set_approval(session=session, run_id=run.id, user_id=user,
                                        kind="approve", source=source, event_id=event_id, at=now)
            if not counted:
                return ApprovalResult(False, run.status, count, required, "already counted")
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action="approval.given", detail={"source": source, "event_id": event_id})
            count += 1
            if count >= required and run.status == RunStatus.AWAITING_APPROVAL.value:
                lifecycle.transition_run(session, run, RunEvent.APPROVE, now=now, actor=user)
                lifecycle.advance_waiting_run(session, run, now, user)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, count, required)

    def _cannot_approve(self, run: Run, user: str, allowed: set[str]) -> str:
        if run.status != RunStatus.AWAITING_APPROVAL.value:
            return f"{run.name} is {run.status.replace('_', ' ')}; it takes no approval now"
        if user == run.requester:
            return "the requester's own approval does not count"
        if user not in allowed:
            return "only configured approvers can approve"
        return ""

    def reject(self, ref: str | int, user: str, *, source: str = "cli",
               approvers: Collection[str] | None = None) -> ApprovalResult:
        """An approver's rejection ends the plan."""
        now = self.clock.now()
        allowed = set(approvers if approvers is not None else self.settings.slack.approvers)
        with unit_of_work(self.sessions) as session:
            run = self._locked(session, ref)
            required = self.settings.slack.approvals_required
            if user not in allowed:
                return ApprovalResult(False, run.status, 0, required,
                                      "only configured approvers can reject")
            if run.status not in (RunStatus.AWAITING_APPROVAL.value, RunStatus.APPROVED.value,
                                  RunStatus.SCHEDULED.value):
                return ApprovalResult(False, run.status, 0, required,
                                      f"{run.name} has started or ended; use abort")
            if run.status != RunStatus.AWAITING_APPROVAL.value:
                lifecycle.transition_run(session, run, RunEvent.WITHDRAW, now=now, actor=user)
            lifecycle.transition_run(session, run, RunEvent.REJECT, now=now, actor=user,
                                     detail={"source": source})
            lifecycle.post(session, run, messages.notice(
                run.name, "🛑", f"rejected by {messages.mention(user)}"), now)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, 0, required)

    def withdraw(self, ref: str | int, user: str) -> ApprovalResult:
        """Take an approval back while the run has not started."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self._locked(session, ref)
            required = self.settings.slack.approvals_required
            not_started = (RunStatus.AWAITING_APPROVAL.value, RunStatus.APPROVED.value,
                           RunStatus.SCHEDULED.value)
            if run.status not in not_started:
                return ApprovalResult(False, run.status, 0, required, "the run has started")
            if not repo.withdraw_approval(session=session, run_id=run.id, user_id=user,
                                          kind="approve", at=now):
                return ApprovalResult(False, run.status, 0, required, "no approval to withdraw")
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action="approval.withdrawn")
            count = len(repo.active_approvals(session=session, run_id=run.id, kind="approve"))
            if count < required and run.status != RunStatus.AWAITING_APPROVAL.value:
                lifecycle.transition_run(session, run, RunEvent.WITHDRAW, now=now, actor=user)
            self._refresh_plan(session, run, now)
            return ApprovalResult(True, run.status, count, required)

    def _refresh_plan(self, session: Session, run: Run, now: Any) -> None:
        repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                             kind="update", payload=self.plan_payload(session, run))

    # -- controlling a run ------------------------------------------------------------------

    def control(self, ref: str | int, action: str, user: str, *,
                approvers: Collection[str] | None = None) -> str:
        """Pause, resume, abort, retry or approve an overrun; return what happened.

        `approvers` (user ids, groups already expanded) decides who may approve an overrun;
        by default the configured list.
        """
        allowed = set(approvers if approvers is not None else self.settings.slack.approvers)
        handlers: dict[str, Callable[[Session, Run, str, Any], str]] = {
            "pause": self._pause, "resume": self._resume, "abort": self._abort,
            "retry": self._retry, "overrun": partial(self._overrun, allowed=allowed)}
        if action not in handlers:
            raise ServiceError(f"unknown action {action!r}; expected one of: "
                               + ", ".join(handlers))
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            run = self._locked(session, ref)
            text = handlers[action](session, run, user, now)
            repo.audit(session=session, at=now, actor=user, run_id=run.id,
                       action=f"operator.{action}")
            lifecycle.update_board(session, run, now)
            return text

    def _need(self, run: Run, *statuses: RunStatus) -> None:
        if run.status not in {s.value for s in statuses}:
            raise ServiceError(f"{run.name} is {run.status.replace('_', ' ')}; expected it "
                               + " or ".join(s.value.replace("_", " ") for s in statuses))

    def _pause(self, session: Session, run: Run, user: str, now: Any) -> str:
        self._need(run, RunStatus.RUNNING, RunStatus.AWAITING_OVERRUN)
        lifecycle.transition_run(session, run, RunEvent.PAUSE, now=now, actor=user)
        run.pause_reason = f"paused by {user}"
        lifecycle.post(session, run, messages.notice(
            run.name, "⏸️", f"paused by {messages.mention(user)}; a step already under way on "
            "a cluster finishes there, nothing new starts", actions=("resume", "abort")), now)
        return f"{run.name} paused"

    def _resume(self, session: Session, run: Run, user: str, now: Any) -> str:
        self._need(run, RunStatus.PAUSED)
        for step in repo.steps_of(session=session, run_id=run.id):
            if step.status == StepStatus.BLOCKED.value:
                lifecycle.transition_step(session, step, StepEvent.RESUME, now=now, actor=user)
                step.data = {**(step.data or {}), "resumed": True, "resumed_by": user}
                step.next_check_at = None
        lifecycle.transition_run(session, run, RunEvent.RESUME, now=now, actor=user)
        run.pause_reason = None
        lifecycle.post(session, run, messages.notice(
            run.name, "▶️", f"resumed by {messages.mention(user)}"), now)
        return f"{run.name} resumed"

    def _retry(self, session: Session, run: Run, user: str, now: Any) -> str:
        self._need(run, RunStatus.ESCALATED, RunStatus.FAILED)
        event = RunEvent.RETRY
        for step in repo.steps_of(session=session, run_id=run.id):
            if step.status in (StepStatus.ESCALATED.value, StepStatus.FAILED.value):
                if step.status == StepStatus.FAILED.value or step.kind == "join":
                    # Re-read the cluster from the start of the step: a failed request, or a
                    # failed join, is sent again only if the cluster still needs it.
                    step.phase = None
                lifecycle.transition_step(session, step, StepEvent.RETRY, now=now, actor=user)
                kept = {k: v for k, v in (step.data or {}).items() if k != "apply_tries"}
                step.data = {**kept, "retry_at": now.isoformat()}
                step.next_check_at = None
                step.last_error = None
        repo.resolve_escalations(session=session, run_id=run.id, at=now, by=user)
        lifecycle.transition_run(session, run, event, now=now, actor=user)
        run.pause_reason = None
        lifecycle.post(session, run, messages.notice(
            run.name, "🔁", f"{messages.mention(user)} asked to verify again"), now)
        return f"{run.name}: verifying again"

    def _abort(self, session: Session, run: Run, user: str, now: Any) -> str:
        for step in repo.steps_of(session=session, run_id=run.id):
            if step.status not in (StepStatus.DONE.value, StepStatus.SKIPPED.value,
                                   StepStatus.CANCELLED.value):
                lifecycle.transition_step(session, step, StepEvent.CANCEL, now=now, actor=user)
        lifecycle.transition_run(session, run, RunEvent.ABORT, now=now, actor=user)
        lifecycle.post(session, run, messages.notice(
            run.name, "⏹️", f"aborted by {messages.mention(user)}. Clusters stay as they are "
            "now; an install already under way finishes on its cluster."), now)
        return f"{run.name} aborted"

    def _overrun(self, session: Session, run: Run, user: str, now: Any, *,
                 allowed: set[str]) -> str:
        self._need(run, RunStatus.AWAITING_OVERRUN)
        if user not in allowed:
            raise ServiceError("only configured approvers can approve an overrun")
        repo.set_approval(session=session, run_id=run.id, user_id=user, kind="overrun",
                          source="cli", event_id=None, at=now)
        run.overrun_approved = True
        lifecycle.transition_run(session, run, RunEvent.APPROVE_OVERRUN, now=now, actor=user)
        lifecycle.post(session, run, messages.notice(
            run.name, "⏱️", f"overrun approved by {messages.mention(user)}; going on"), now)
        return f"{run.name}: overrun approved"

    def run_status(self, ref: str | int) -> tuple[str, list[tuple[str, str, str]]]:
        """A run's status and its steps as (key, status, note) rows."""
        with unit_of_work(self.sessions) as session:
            run = self._run(session, ref)
            steps = repo.steps_of(session=session, run_id=run.id)
            return run.status, [(s.key, s.status, s.last_error or "") for s in steps]

    # -- reading runs (status, history, Slack lookups) -----------------------------------------

    def summary(self, ref: str | int) -> RunSummary:
        """One run's summary; ServiceError when there is no such run."""
        with unit_of_work(self.sessions) as session:
            return summarize(self._run(session, ref))

    def run_for_message(self, channel: str, ts: str) -> RunSummary | None:
        """The run whose plan message is `ts` in `channel`, if any."""
        with unit_of_work(self.sessions) as session:
            run = repo.get_run_by_message(session=session, channel=channel, ts=ts)
            return summarize(run) if run is not None else None

    def active_runs(self) -> list[RunSummary]:
        """Runs that are not over yet (awaiting approval to failed), newest first."""
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.list_runs(
                session=session, statuses=[s.value for s in ACTIVE_RUN], limit=50)]

    def history(self, target: str | None = None, limit: int = 10) -> list[RunSummary]:
        """The latest runs, of one supercluster or cluster (UnknownTarget if unknown)."""
        name = self.settings.target(target).name if target else None
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.list_runs(session=session, target=name,
                                                         limit=limit)]

    def awaiting_reactions(self) -> list[RunSummary]:
        """Posted plans that may still gain or lose approvals (re-read at start-up)."""
        with unit_of_work(self.sessions) as session:
            return [summarize(r) for r in repo.runs_with_plan_message(
                session=session, statuses=[s.value for s in APPROVABLE])]

    def approvals(self, ref: str | int, kind: str = "approve") -> list[tuple[str, str]]:
        """The approvals that count now, as (user, source), oldest first."""
        with unit_of_work(self.sessions) as session:
            run = self._run(session, ref)
            return [(a.user_id, a.source) for a in repo.active_approvals(
                session=session, run_id=run.id, kind=kind)]
