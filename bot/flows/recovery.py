"""Recovery: plan the vendor's rollback of one cluster, or the way back to a served network.

A recovery plan is read from the clusters as they are now, stored as a run of its own that names
the run it recovers (`runs.recovers`), posted like a plan, approved by
`recovery_approvals_required` approvers (never the requester), and run by the same worker.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from bot.engine.planner import Plan, plan_to_json
from bot.engine.recovery import Recovered
from bot.engine.recovery_plans import plan_restore, plan_rollback
from bot.engine.states import ACTIVE_RUN, HELD, RunEvent, RunStatus
from bot.flows.base import Flow, ServiceError
from bot.flows.planning import plan_payload, plan_timing, step_rows
from bot.runs.readings import clusters_of, facts_of, read_network, recovered_from, snapshot_rows
from bot.runs.transitions import transition_run
from storage import repo
from storage.db import unit_of_work
from storage.models import Run

# A rollback may follow any run that is not moving its clusters right now.
ROLLBACK_FROM = frozenset({*HELD, RunStatus.FAILED, RunStatus.ABORTED, RunStatus.COMPLETED})
# A restore follows a run that stopped for good or for a person (DESIGN.md, "Recovery").
RESTORE_FROM = frozenset({RunStatus.ABORTED, RunStatus.ESCALATED, RunStatus.FAILED})


class Recovery(Flow):
    """`/upgrade rollback RUN CLUSTER` and `/upgrade restore RUN`."""

    def rollback(self, ref: str | int, cluster: str, *, requester: str,
                 channel: str | None = None) -> tuple[str, Plan]:
        """Plan one cluster's rollback from where it is now and post it for approval."""
        recovered, names = self._recovered(ref, ROLLBACK_FROM, "rolled back")
        if cluster not in names:
            raise ServiceError(f"{cluster} is not a cluster of {recovered.name} (its clusters: "
                               f"{', '.join(names)}): `/upgrade rollback {recovered.name} "
                               f"{names[0] if names else 'CLUSTER'}`")
        found, _, raw = read_network(self.clients, self._servers(names))
        plan = plan_rollback(recovered, cluster, found,
                             tuple(facts_of(t) for t in raw.get(cluster, ())),
                             plan_timing(self.settings))
        rows = None if recovered.record else snapshot_rows(raw.get(cluster, ()))
        return self._submit(ref, plan, requester, channel, rows), plan

    def restore(self, ref: str | int, *, requester: str,
                channel: str | None = None) -> tuple[str, Plan]:
        """Plan the way back to a served network from the clusters as they are, and post it."""
        recovered, names = self._recovered(ref, RESTORE_FROM, "restored after")
        found, _, raw = read_network(self.clients, self._servers(names))
        rows = None
        if not recovered.record:  # no record kept: the territories of cluster A as they are
            live = raw.get(recovered.cluster_a or names[0], ())
            recovered = Recovered(**{**recovered.__dict__,
                                     "record": tuple(facts_of(t) for t in live)})
            rows = snapshot_rows(live)
        plan = plan_restore(recovered, found, plan_timing(self.settings))
        return self._submit(ref, plan, requester, channel, rows), plan

    def cluster_of_step(self, ref: str | int, step_id: int) -> str:
        """The cluster of a run's step (the Roll back button names the escalated step)."""
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            step = next((s for s in repo.steps_of(session=session, run_id=run.id)
                         if s.id == step_id), None)
            if step is None or step.cluster is None:
                raise ServiceError(f"this button names no cluster of {run.name} any more: "
                                   f"`/upgrade rollback {run.name} CLUSTER`")
            return step.cluster

    # -- helpers --------------------------------------------------------------------------------

    def _servers(self, names: Sequence[str]) -> dict[str, int]:
        known = {c.name: c.servers for c in self.settings.all_clusters()}
        return {n: known.get(n, 2) for n in names}

    def _recovered(self, ref: str | int, allowed: frozenset[RunStatus],
                   what: str) -> tuple[Recovered, list[str]]:
        with unit_of_work(self.sessions) as session:
            run = self.find(session, ref)
            if RunStatus(run.status) not in allowed:
                raise ServiceError(
                    f"{run.name} is {RunStatus(run.status).words}; a cluster can be {what} a "
                    "run that is " + ", ".join(sorted(s.words for s in allowed))
                    + f" (pause or abort it first: `/upgrade abort {run.name}`)")
            names = clusters_of(run, [c.name for c in self.settings.all_clusters()])
            return recovered_from(session, run, names), names

    def _submit(self, ref: str | int, plan: Plan, requester: str, channel: str | None,
                rows: list[dict[str, object]] | None) -> str:
        now = self.clock.now()
        with unit_of_work(self.sessions) as session:
            recovered = self.lock(session, ref)
            _refuse_overlap(session, recovered, plan)
            run = repo.add_run(
                session=session, target=plan.target, target_kind=plan.target_kind,
                to_version=plan.to_version, strategy=plan.strategy.value,
                strategy_reason=" ".join(plan.reasons), status=RunStatus.PLANNED,
                requester=requester, channel=channel or recovered.channel
                or self.settings.slack.channel, plan=plan_to_json(plan), plan_digest=plan.digest,
                recovers=recovered.id, created_at=now, updated_at=now)
            repo.add_steps(session=session, run=run, steps=step_rows(plan))
            record = rows if rows is not None else repo.territory_snapshot(
                session=session, run_id=recovered.id)
            if record:
                repo.save_territory_snapshot(session=session, run_id=run.id,
                                             supercluster=recovered.target, territories=record,
                                             at=now)
            repo.audit(session=session, at=now, actor=requester, run_id=run.id,
                       action="run.planned", detail={"digest": plan.digest,
                                                     "strategy": plan.strategy.value,
                                                     "recovers": recovered.name})
            repo.audit(session=session, at=now, actor=requester, run_id=recovered.id,
                       action=f"recovery.{plan.strategy.value}.planned",
                       detail={"run": run.name})
            transition_run(session, run, RunEvent.SUBMIT, now=now, actor=requester)
            repo.enqueue_message(session=session, at=now, channel=run.channel, run_id=run.id,
                                 kind="post", key=f"{run.id}:plan",
                                 payload=plan_payload(session, run, self.settings.slack))
            return run.name


def _refuse_overlap(session: Session, recovered: Run, plan: Plan) -> None:
    """Refuse a recovery whose clusters another unfinished run holds (the recovered one aside)."""
    wanted = set(plan.order)
    for other in repo.list_runs(session=session, statuses=ACTIVE_RUN, limit=500):
        if other.id == recovered.id:
            continue
        held = set((other.plan or {}).get("order", ())) or {other.target}
        if held & wanted:
            raise ServiceError(
                f"{other.name} ({other.strategy} of {other.target}, "
                f"{RunStatus(other.status).words}) still holds {', '.join(sorted(held & wanted))}"
                f": let it finish, or `/upgrade abort {other.name}` first")

