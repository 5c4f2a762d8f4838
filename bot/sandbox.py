"""Turn the settings' inventory (and its optional `simulation:` section) into a DMA simulator."""

from __future__ import annotations

from collections.abc import Iterable

from bot.clock import Clock
from bot.config import Settings
from bot.engine.errors import UserError
from bot.simulator import (
    DmaSimulator,
    Fault,
    SimCluster,
    SimSupercluster,
    SimTerritory,
    parse_fault,
)


class FaultError(UserError):
    """A --fault (or simulation.faults entry) that names no cluster or no known kind."""


def default_territories(name: str, members: list[str]) -> list[SimTerritory]:
    """One territory per cluster, backed up by the next cluster, when the config names none."""
    return [SimTerritory(territory_id=f"t-{c}", name=f"{c.title()} sites", primary=c,
                         backup=members[(i + 1) % len(members)] if len(members) > 1 else None,
                         conference_room_host=i < 3)
            for i, c in enumerate(members)]


def build_simulator(settings: Settings, *, clock: Clock | None = None, speed: float = 1.0,
                    faults: Iterable[str] = (), username: str = "admin",
                    password: str = "admin", port: int = 0) -> DmaSimulator:
    """A simulator serving every cluster of the inventory, in its superclusters."""
    sim = settings.simulation
    clusters = []
    for spec in settings.all_clusters():
        override = sim.clusters.get(spec.name) if sim else None
        clusters.append(SimCluster(
            name=spec.name, servers=spec.servers,
            version=(override and override.version) or (sim.version if sim else "10.0.0.3"),
            estimated_install_minutes=(override and override.estimated_install_minutes)
            or (sim.estimated_install_minutes if sim else 35.0),
            active_calls=(override.active_calls if override and override.active_calls
                          is not None else (sim.active_calls if sim else 0)),
            host_name=spec.fqdn))
    superclusters = []
    for sc in settings.superclusters:
        members = [c.name for c in sc.clusters]
        given = sim.territories.get(sc.name) if sim else None
        territories = ([SimTerritory(territory_id=t.id, name=t.name, primary=t.primary,
                                     backup=t.backup, conference_room_host=t.conference_room_host)
                        for t in given] if given else default_territories(sc.name, members))
        superclusters.append(SimSupercluster(name=sc.name, members=members,
                                             territories=territories))
    parsed: dict[str, list[Fault]] = {}
    configured = [f"{c}={f}" for c, fs in (sim.faults.items() if sim else ()) for f in fs]
    for text in [*configured, *faults]:
        try:
            cluster, fault = parse_fault(text)
        except ValueError as exc:  # parse_fault's own words say what a fault looks like
            raise FaultError(str(exc)) from None
        if settings.cluster(cluster) is None:
            raise FaultError(f"--fault {text}: no cluster named {cluster!r}; known: "
                             + ", ".join(c.name for c in settings.all_clusters()))
        parsed.setdefault(cluster, []).append(fault)
    packages = {p.url: version for version, p in settings.packages.items()}
    return DmaSimulator(clusters, superclusters, packages=packages, clock=clock, speed=speed,
                        username=username, password=password, faults=parsed, port=port)
