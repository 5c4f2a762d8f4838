"""Read what the validation gate judges, from every cluster of a target (I/O; the rules are pure).

Used when a plan is made (bot/flows/planning.py) and again when its run starts (the pre-flight
step). A cluster that does not answer raises DmaNotReachable: the caller decides what that means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from bot.dma.client import DmaClient
from bot.dma.errors import DmaNotFound, DmaNotReachable
from bot.engine.gate import ClusterReading, GateReading
from bot.engine.plans import TerritoryFacts

_T = TypeVar("_T")
_TRIES = 3


def _read(call: Callable[[], _T]) -> _T:
    """A read, asked again at once when it is not answered (the gate makes many of them).

    Reads only: asking again changes nothing. After three silences the caller sees the error.
    """
    for attempt in range(_TRIES):
        try:
            return call()
        except DmaNotReachable:
            if attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def read_cluster(client: DmaClient, name: str, servers: int) -> ClusterReading:
    """One cluster: version, servers up, private link, alerts, service status, calls."""
    sw = _read(client.installed_software)
    ha = _read(client.ha_status)
    status = _read(client.status)
    member = _read(client.supercluster).member(name)
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
    view = _read(via.supercluster)
    territories = tuple(TerritoryFacts(t.territory_id, t.name, t.primary, t.backup,
                                       t.conference_room_host) for t in _read(via.territories))
    try:
        answer = _read(lambda: via.check_compatibility(to_version))
        compatible, message = answer.compatible, answer.message
    except DmaNotFound:  # a DMA without the resource: version arithmetic decides
        compatible, message = None, ""
    return GateReading(target, readings, members=tuple(sorted(view.ids)),
                       expected_members=tuple(sorted(expected_members)),
                       warnings=tuple(view.warnings), territories=territories,
                       compatible=compatible, compatibility_message=message)
