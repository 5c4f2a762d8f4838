"""Planning: read the clusters live, make the plan, and post it for approval."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from bot import messages
from bot.config import Settings, SlackSettings, Target
from bot.dma.errors import DmaError
from bot.engine.gate import GateReading, evaluate
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.planner import (
    ClusterFacts,
    Plan,
    PlanningError,
    PlanRequest,
    PlanTiming,
    Strategy,
    TerritoryFacts,
    make_plan,
    plan_to_json,
)
from bot.engine.plans import PLANNABLE
from bot.engine.states import ACTIVE_RUN, RunEvent, RunStatus
from bot.engine.versions import parse_version
from bot.engine.windows import Window
from bot.flows.base import Flow, ServiceError
from bot.runs.checklist import acknowledgements
from bot.runs.gate import read_gate
from bot.runs.plans import plan_of
from bot.runs.transitions import transition_run
from bot.runs.waiting import window_of
from storage import repo
from storage.db import unit_of_work
from storage.models import Run


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


def plan_timing(settings: Settings) -> PlanTiming:
    """The planner's timing from the configured one."""
    t = settings.timing
    return PlanTiming(install_estimate_s=t.install_estimate.total_seconds(),
                      login_grace_s=t.login_grace.total_seconds(),
                      join_estimate_s=t.join_estimate.total_seconds(),
                      leave_estimate_s=t.leave_estimate.total_seconds(),
                      drain_estimate_s=t.drain_estimate.total_seconds(),
                      people_time_s=t.incremental_people_time.total_seconds(),
                      max_parallel_installs=t.max_parallel_installs)


def step_rows(plan: Plan) -> list[dict[str, Any]]:
    """The plan's steps as the rows `repo.add_steps` stores (upgrades and recoveries alike)."""
    return [{"seq": i, "key": s.key, "kind": s.kind.value, "cluster": s.cluster,
             "deps": list(s.deps), "params": {k: v if isinstance(v, str) else list(v)
                                              for k, v in s.params},
             "estimate_s": s.estimate_s, "title": s.title, "safe_point": s.safe_point}
            for i, s in enumerate(plan.steps)]


def plan_payload(session: Session, run: Run, slack: SlackSettings) -> dict[str, Any]:
    """The plan message of a run, with its approvals so far."""
    window = window_of(run)
    approvals = [a.user_id for a in repo.active_approvals(session=session, run_id=run.id,
                                                          kind="approve")]
    return messages.plan_message(
        run.name, plan_of(run), window=window.describe() if window else None,
        approvals_required=approvals_required(run, slack), approvers=slack.approvers,
        approve_reaction=slack.approve_reaction, reject_reaction=slack.reject_reaction,
        requester=run.requester, approvals=approvals, status=RunStatus(run.status),
        recovers=f"R{run.recovers}" if run.recovers else None,
        acknowledged=acknowledgements(session, run))


def approvals_required(run: Run, slack: SlackSettings) -> int:
    """How many approvals a run needs: a recovery run (rollback, restore) has its own quorum."""
    return slack.recovery_approvals_required if run.recovers else slack.approvals_required


class Planning(Flow):
    """Inventory, plans, and submitting a plan for approval."""

    def inventory(self) -> list[ClusterHealth]:
        """Read every cluster of the inventory live: version, servers up, uploaded package."""
        rows = []
        for spec in self.settings.all_clusters():
            sc = self.settings.supercluster_of(spec.name)
            where = sc.name if sc else None
            try:
                sw = self.clients(spec.name).installed_software()
                ha = self.clients(spec.name).ha_status()
            except DmaError as exc:
                rows.append(ClusterHealth(spec.name, where, spec.servers, None, 0, None,
                                          str(exc)))
                continue
            up = sum(1 for n in ha.nodes if n.state == "UP")
            problem = None if up >= spec.servers else f"{up} of {spec.servers} servers up"
            rows.append(ClusterHealth(spec.name, where, spec.servers, sw.system_version, up,
                                      sw.upgrade_version, problem))
        return rows

    def plan(self, target_name: str, version: str, strategy: str = "auto", *,
             emergency: bool = False) -> Plan:
        """Compute the plan for a target from the clusters as they are now (read-only)."""
        target = self.settings.target(target_name)
        parse_version(version)  # InvalidVersion says what a version looks like
        try:
            wanted = Strategy(strategy)
            if wanted not in PLANNABLE:
                raise ValueError(strategy)
        except ValueError:
            raise ServiceError(f"unknown strategy {strategy!r}; expected one of: "
                               + ", ".join(s.value for s in PLANNABLE)) from None
        clusters, territories = self._facts(target)
        if version not in self.settings.packages and not all(
                c.upgrade_version == version or c.version == version for c in clusters):
            known = ", ".join(sorted(self.settings.packages)) or "none"
            raise ServiceError(f"no package for {version} in the config (packages: {known}) and "
                               "it is not uploaded on every cluster")
        member_of = target.supercluster.name if (
            target.kind == "cluster" and target.supercluster is not None) else None
        reading = self._gate(target, version)
        return make_plan(PlanRequest(
            target=target.name, target_kind=target.kind, clusters=clusters,
            territories=territories, to_version=version, strategy=wanted,
            timing=plan_timing(self.settings), emergency=emergency, supercluster=member_of,
            # The DMA's own check-compatibility answer wins over version arithmetic.
            compatible_override=reading.compatible, prechecks=evaluate(reading),
            seed=target.supercluster.seed if target.supercluster else None))

    def _gate(self, target: Target, version: str) -> GateReading:
        """The validation gate's reading of every cluster of the target (and its supercluster)."""
        members = ([c.name for c in target.supercluster.clusters]
                   if target.supercluster is not None else None)
        try:
            return read_gate(self.clients, target.name,
                             [(c.name, c.servers) for c in target.clusters],
                             to_version=version, expected_members=members)
        except DmaError as exc:
            raise ServiceError(f"cannot read {target.name} for the validation gate: "
                               f"{exc}") from exc

    def _facts(self, target: Target) -> tuple[tuple[ClusterFacts, ...],
                                              tuple[TerritoryFacts, ...]]:
        clusters = []
        for spec in target.clusters:
            try:
                sw = self.clients(spec.name).installed_software()
                load = self.clients(spec.name).status()
            except DmaError as exc:
                raise ServiceError(f"cannot read {spec.name}: {exc}") from exc
            clusters.append(ClusterFacts(name=spec.name, servers=spec.servers,
                                         version=sw.system_version,
                                         estimated_install_minutes=sw.estimated_install_minutes,
                                         upgrade_version=sw.upgrade_version,
                                         active_calls=load.active_calls,
                                         registrations=load.registrations))
        territories: tuple[TerritoryFacts, ...] = ()
        if target.supercluster is not None:
            try:
                found = self.clients(target.clusters[0].name).territories()
            except DmaError as exc:
                raise ServiceError(f"cannot read the territories of {target.name}: {exc}") from exc
            territories = tuple(TerritoryFacts(t.territory_id, t.name, t.primary, t.backup,
                                               t.conference_room_host) for t in found)
        return tuple(clusters), territories

    def submit(self, plan: Plan, *, requester: str, channel: str | None = None,
               window: Window | None = None, require_window: bool = True) -> str:
        """Store the plan as a run awaiting approval and post it; return the run's name."""
        if plan.needs_window and window is None and require_window:
            raise ServiceError(f"a {plan.strategy.value} upgrade is a complete outage: give a "
                               "maintenance window, e.g. window=2026-11-28T22:00/4h "
                               "tz=America/Chicago")
        if self.settings.checklist.require_acknowledgement:
            plan = replace(plan, acknowledge=tuple(CHECKLIST_ACKS))
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            self._refuse_overlap(session, plan)
            run = repo.add_run(
                session=session, target=plan.target, target_kind=plan.target_kind,
                to_version=plan.to_version, strategy=plan.strategy.value,
                strategy_reason=" ".join(plan.reasons), status=RunStatus.PLANNED,
                requester=requester, channel=channel or self.settings.slack.channel,
                plan=plan_to_json(plan), plan_digest=plan.digest,
                window_start=window.start if window else None,
                window_end=window.end if window else None,
                window_tz=window.tz if window else None, created_at=now, updated_at=now)
            repo.add_steps(session=session, run=run, steps=step_rows(plan))
            repo.audit(session=session, at=now, actor=requester, run_id=run.id,
                       action="run.planned", detail={"digest": plan.digest,
                                                     "strategy": plan.strategy.value,
                                                     "emergency": plan.emergency})
            if plan.emergency:
                repo.audit(session=session, at=now, actor=requester, run_id=run.id,
                           action="run.emergency", detail={
                               "meaning": "installs may start with calls up"})
            transition_run(session, run, RunEvent.SUBMIT, now=now, actor=requester)
            repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                                 kind="post", key=f"{run.id}:plan",
                                 payload=plan_payload(session, run, self.settings.slack))
            return run.name

    @staticmethod
    def _refuse_overlap(session: Session, plan: Plan) -> None:
        """Refuse a plan whose clusters another unfinished run still holds."""
        wanted = set(plan.order)
        for other in repo.list_runs(session=session, statuses=ACTIVE_RUN, limit=500):
            held = set((other.plan or {}).get("order", ())) or {other.target}
            if held & wanted or other.target == plan.target:
                raise ServiceError(
                    f"{other.name} ({other.target}, {RunStatus(other.status).words}) still "
                    f"holds {', '.join(sorted(held & wanted)) or other.target}: let it finish, "
                    f"or `/upgrade abort {other.name}` first")


__all__ = ["ClusterHealth", "Planning", "PlanningError", "approvals_required", "plan_payload",
           "plan_timing"]
