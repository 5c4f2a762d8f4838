"""Recovery facts and the service impact of a stopped run (pure: no I/O).

The clusters as read now (`ClusterNow`, one per cluster; `ScView`, one per supercluster), the run
being recovered (`Recovered`), and what the network serves at this moment (`Impact`). The plans
built from these facts are in `recovery_plans`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.engine.errors import UserError
from bot.engine.plans import TerritoryFacts
from bot.engine.versions import InvalidVersion, parse_version

IN_SERVICE = "IN_SERVICE"


class RecoveryError(UserError):
    """A recovery that cannot be planned; the message says why and what would work."""


@dataclass(frozen=True)
class ClusterNow:
    """One cluster as read just now, for recovery."""

    name: str
    servers: int  # what the inventory expects
    reachable: bool
    version: str | None = None
    rollback_version: str | None = None
    servers_up: int = 0
    versions_agree: bool = True
    members: tuple[str, ...] = ()  # its supercluster as it reports it, itself included
    service: str | None = None  # IN_SERVICE, BUSIED_OUT, OUT_OF_SERVICE
    rolled_back: bool = False  # its newest history row is a successful rollback
    problem: str = ""  # why it is not healthy, in words

    @property
    def healthy(self) -> bool:
        """Answers, every expected server up, one package version on all of them."""
        return self.reachable and self.servers_up >= self.servers and self.versions_agree

    @property
    def standalone(self) -> bool:
        """Not a member of a supercluster with other clusters."""
        return set(self.members) <= {self.name}

    @property
    def why_not_healthy(self) -> str:
        """What is wrong with it, for a plan or a notice."""
        if self.problem:
            return self.problem
        if not self.reachable:
            return "does not answer"
        if self.servers_up < self.servers:
            return f"{self.servers_up} of {self.servers} servers up"
        return "its servers run different package versions"


@dataclass(frozen=True)
class ScView:
    """One supercluster as one of its members reports it: members and territories."""

    members: tuple[str, ...]
    territories: tuple[TerritoryFacts, ...]


@dataclass(frozen=True)
class Recovered:
    """The run being recovered, as far as recovery needs it."""

    name: str
    target: str
    target_kind: str
    clusters: tuple[str, ...]  # inventory order
    cluster_a: str | None  # the cluster that seeded (or would seed) its new supercluster
    from_versions: tuple[tuple[str, str], ...]
    to_version: str
    record: tuple[TerritoryFacts, ...]  # the recorded territory plan (may be empty)
    escalated: tuple[tuple[str, str], ...] = ()  # open escalations: (cluster, condition)

    def version_before(self, cluster: str) -> str | None:
        """The version the cluster ran when the run was planned."""
        return dict(self.from_versions).get(cluster)


@dataclass(frozen=True)
class Impact:
    """What the network serves now: who is out of service, alone, unreachable, unmanaged."""

    out_of_service: tuple[str, ...]
    standalone: tuple[str, ...]
    unreachable: tuple[str, ...]
    unmanaged: tuple[str, ...]  # territory names with no in-service cluster managing them

    def lines(self) -> tuple[str, ...]:
        """The impact in words, one fact per line."""
        return (
            "Out of service: " + (", ".join(self.out_of_service) or "none"),
            "Stand-alone (not in a supercluster): " + (", ".join(self.standalone) or "none"),
            *(("Not answering: " + ", ".join(self.unreachable),) if self.unreachable else ()),
            "Territories with no in-service manager: " + (", ".join(self.unmanaged) or "none"),
        )


def family(version: str | None) -> str:
    """The version family of a supercluster: MAJOR.MINOR ("?" when unreadable)."""
    if version is None:
        return "?"
    try:
        parsed = parse_version(version)
    except InvalidVersion:
        return version
    return f"{parsed.major}.{parsed.minor}"


def service_impact(clusters: Sequence[ClusterNow], views: Iterable[ScView]) -> Impact:
    """Say what is out of service, stand-alone, unreachable, and which territories nobody serves."""
    serving = {c.name for c in clusters if c.reachable and c.service == IN_SERVICE}
    names: dict[str, str] = {}
    managed: set[str] = set()
    for view in views:
        for t in view.territories:
            names.setdefault(t.territory_id, t.name or t.territory_id)
            if {t.primary, t.backup} & serving & set(view.members):
                managed.add(t.territory_id)
    unmanaged = tuple(sorted(names[tid] for tid in names if tid not in managed))
    return Impact(
        out_of_service=tuple(c.name for c in clusters if c.reachable and c.service != IN_SERVICE),
        standalone=tuple(c.name for c in clusters if c.reachable and c.standalone),
        unreachable=tuple(c.name for c in clusters if not c.reachable),
        unmanaged=unmanaged)


def ways_on(run_name: str, clusters: Sequence[str] = ()) -> str:
    """The commands that take a stopped run on: retry, rollback, restore."""
    which = "/".join(clusters) if clusters else "CLUSTER"
    return (f"Ways on: `/upgrade retry {run_name}` once the cause is dealt with; "
            f"`/upgrade rollback {run_name} {which}` (the vendor's rollback of one cluster); "
            f"`/upgrade restore {run_name}` (plan the way back to a served network).")


def by_name(clusters: Iterable[ClusterNow]) -> Mapping[str, ClusterNow]:
    """The clusters keyed by name."""
    return {c.name: c for c in clusters}
