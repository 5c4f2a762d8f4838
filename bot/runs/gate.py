"""Read what the validation gate judges, from every cluster of a target (I/O; the rules are pure).

Used when a plan is made (bot/flows/planning.py) and again when its run starts (the pre-flight
step). A cluster that does not answer raises DmaNotReachable: the caller decides what that means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.dma.client import DmaClient
from bot.dma.errors import DmaNotFound
from bot.engine.gate import ClusterReading, GateReading
from bot.engine.plans import TerritoryFacts


def read_cluster(client: DmaClient, name: str, servers: int) -> ClusterReading:
    """One cluster: version, servers up, private link, alerts, service status, calls."""
    sw = client.installed_software()
    ha = client.ha_status()
    status = client.status()
    member = client.supercluster().member(name)
    return ClusterReading(
        name=name, servers_expected=servers, version=sw.system_version,
        servers_up=sum(1 for n in ha.nodes if n.state == "UP"), link_up=ha.ha_connected,
        alerts=tuple(status.alerts), service=member.service_status if member else None,
        calls=status.active_calls, registrations=status.registrations)


def read_gate(client_for: Callable[[str], DmaClient], target: str,
              clusters: Sequence[tuple[str, int]], *, to_version: str,
              expected_members: Sequence[str] | None) -> GateReading:
    """Every cluster, then (when `expected_members` is given) the supercluster via the first."""
    readings = tuple(read_cluster(client_for(name), name, servers) for name, servers in clusters)
    if expected_members is None:
        return GateReading(target, readings)
    via = client_for(clusters[0][0])
    view = via.supercluster()
    territories = tuple(TerritoryFacts(t.territory_id, t.name, t.primary, t.backup,
                                       t.conference_room_host) for t in via.territories())
    try:
        answer = via.check_compatibility(to_version)
        compatible, message = answer.compatible, answer.message
    except DmaNotFound:  # a DMA without the resource: version arithmetic decides
        compatible, message = None, ""
    return GateReading(target, readings, members=tuple(sorted(view.ids)),
                       expected_members=tuple(sorted(expected_members)),
                       warnings=tuple(view.warnings), territories=territories,
                       compatible=compatible, compatibility_message=message)
