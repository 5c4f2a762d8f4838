"""Read the clusters for recovery: each cluster as it is now, and each supercluster's territories.

Used by the recovery flows (to plan) and by the worker and the controls (to state the service
impact of an escalation or an abort). Every read is bounded by the client's timeout; a cluster
that does not answer is reported as such, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from bot.dma.client import DmaClient
from bot.dma.errors import DmaError
from bot.dma.models import Territory
from bot.engine.impact import ServiceImpact, service_impact
from bot.engine.plans import TerritoryFacts
from bot.engine.recovery import ClusterNow, Recovered, ScView
from bot.runs.plans import plan_of
from storage import repo
from storage.models import Run

Clients = Callable[[str], DmaClient]


def facts_of(t: Territory) -> TerritoryFacts:
    """A territory as the planner sees it."""
    return TerritoryFacts(t.territory_id, t.name, t.primary, t.backup, t.conference_room_host)


def read_cluster(client: DmaClient, name: str, servers: int) -> tuple[ClusterNow, ScView | None,
                                                                       tuple[Territory, ...]]:
    """One cluster now: software, servers, membership, service; its supercluster's territories."""
    try:
        sw = client.installed_software()
        ha = client.ha_status()
        view = client.supercluster()
    except DmaError as exc:
        return ClusterNow(name, servers, reachable=False, problem=f"does not answer ({exc})"), \
            None, ()
    try:
        territories = client.territories()
    except DmaError:
        territories = ()
    up = sum(1 for n in ha.nodes if n.state == "UP")
    versions = {n.package_version for n in ha.nodes if n.package_version is not None}
    member = view.member(name)
    newest = sw.latest_for_server(1)
    now = ClusterNow(
        name=name, servers=servers, reachable=True, version=sw.system_version,
        rollback_version=sw.rollback_version, servers_up=up, versions_agree=len(versions) <= 1,
        members=tuple(sorted(view.ids)), service=member.service_status if member else None,
        rolled_back=newest is not None and newest.status == "ROLLBACK_SUCCESSFUL")
    return now, ScView(now.members, tuple(facts_of(t) for t in territories)), territories


def read_network(clients: Clients, servers: Mapping[str, int]
                 ) -> tuple[list[ClusterNow], list[ScView], dict[str, tuple[Territory, ...]]]:
    """Every named cluster now, each supercluster once, and the territories each one reports."""
    found: list[ClusterNow] = []
    views: dict[tuple[str, ...], ScView] = {}
    raw: dict[str, tuple[Territory, ...]] = {}
    for name, count in servers.items():
        now, view, territories = read_cluster(clients(name), name, count)
        found.append(now)
        raw[name] = territories
        if view is not None:
            views.setdefault(view.members, view)
    return found, list(views.values()), raw


def clusters_of(run: Run, inventory: Iterable[str]) -> list[str]:
    """The clusters a run touches, in inventory order (then the plan's for unknown names)."""
    plan = plan_of(run)
    names = [n for n, _ in plan.from_versions] + list(plan.order)
    known = [n for n in inventory if n in names]
    return list(dict.fromkeys([*known, *names]))


def recovered_from(session: Session, run: Run, clusters: Sequence[str]) -> Recovered:
    """The facts of a stored run that recovery needs: clusters, cluster A, versions, record."""
    plan = plan_of(run)
    rows = repo.territory_snapshot(session=session, run_id=run.id)
    return Recovered(
        name=run.name, target=run.target, target_kind=run.target_kind, clusters=tuple(clusters),
        cluster_a=plan.seed or (plan.order[0] if plan.order else None),
        from_versions=plan.from_versions, to_version=run.to_version,
        record=tuple(facts_of(Territory.from_json(r)) for r in rows),
        escalated=tuple((e.cluster, e.condition)
                        for e in repo.open_escalations(session=session, run_id=run.id)))


def impact_now(clients: Clients, servers: Mapping[str, int], *,
               superclustered: bool = True) -> ServiceImpact:
    """The service impact of the named clusters at this moment (see `service_impact`)."""
    found, views, _ = read_network(clients, servers)
    return service_impact(found, views, superclustered=superclustered)


def snapshot_rows(territories: Iterable[Territory]) -> list[dict[str, Any]]:
    """Territories as stored in a run's territory record."""
    return [t.to_json() for t in territories]
