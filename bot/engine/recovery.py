"""Recovery facts: the clusters as they are now and the run being recovered (pure: no I/O).

The clusters as read now (`ClusterNow`, one per cluster; `ScView`, one per supercluster) and the
run being recovered (`Recovered`). The plans built from these facts are in `recovery_plans`; what
the network serves at this moment (the service impact) is in `impact`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def family(version: str | None) -> str:
    """The version family of a supercluster: MAJOR.MINOR ("?" when unreadable)."""
    if version is None:
        return "?"
    try:
        parsed = parse_version(version)
    except InvalidVersion:
        return version
    return f"{parsed.major}.{parsed.minor}"


def by_name(clusters: Iterable[ClusterNow]) -> Mapping[str, ClusterNow]:
    """The clusters keyed by name."""
    return {c.name: c for c in clusters}
