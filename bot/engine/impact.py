"""The service impact now: clusters out of service, stand-alone ones, unmanaged territories.

Pure: it reads the clusters as read just now (`ClusterNow`) and each supercluster's territories
(`ScView`). Every abort notice and every escalation packet states this impact (DESIGN.md,
"Recovery"); the escalation keeps it in its stored form (`to_json`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.engine.recovery import IN_SERVICE, ClusterNow, ScView

NOT_ANSWERING = "not answering"
_PLAIN = "out of service"  # said without a reason: the heading says it already


@dataclass(frozen=True)
class ServiceImpact:
    """What is not serving now; `known` is False when no cluster answered to tell."""

    out_of_service: tuple[tuple[str, str], ...] = ()  # (cluster, why: "busied out", …)
    standalone: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()  # territory names with no in-service cluster managing them
    known: bool = True

    @property
    def unreachable(self) -> tuple[str, ...]:
        """The clusters that did not answer."""
        return tuple(c for c, why in self.out_of_service if why == NOT_ANSWERING)

    def lines(self) -> list[str]:
        """The impact as short lines people read, one fact per line."""
        if not self.known:
            if self.unreachable:
                return [f"unknown: no cluster of the target answered "
                        f"({', '.join(self.unreachable)})"]
            return ["unknown: it could not be read"]
        out = ", ".join(c if why == _PLAIN else f"{c} ({why})" for c, why in self.out_of_service)
        return [f"Out of service: {out or 'none'}",
                f"Stand-alone (not in a supercluster): {', '.join(self.standalone) or 'none'}",
                f"Territories with no in-service manager: {', '.join(self.unmanaged) or 'none'}"]

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"out_of_service": [list(p) for p in self.out_of_service],
                "standalone": list(self.standalone), "unmanaged": list(self.unmanaged),
                "known": self.known}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ServiceImpact:
        """Read the stored form back (an absent one is unknown)."""
        if not data:
            return cls(known=False)
        return cls(tuple((str(c), str(w)) for c, w in data.get("out_of_service", [])),
                   tuple(data.get("standalone", [])), tuple(data.get("unmanaged", [])),
                   bool(data.get("known", True)))


def _why(cluster: ClusterNow) -> str:
    if not cluster.reachable:
        return NOT_ANSWERING
    if cluster.service is None:
        return "not listed in its supercluster"
    return cluster.service.lower().replace("_", " ")


def service_impact(clusters: Sequence[ClusterNow], views: Iterable[ScView], *,
                   superclustered: bool = True) -> ServiceImpact:
    """Say what is out of service, stand-alone, and which territories nobody in service manages.

    A territory is managed when its primary or its backup is in service in the supercluster
    that reports it. Stand-alone clusters are named only when the target is meant to be one
    supercluster (`superclustered`) or some cluster is in one; a cluster that does not answer
    is never called stand-alone.
    """
    if clusters and not any(c.reachable for c in clusters):
        return ServiceImpact(tuple((c.name, NOT_ANSWERING) for c in clusters), known=False)
    serving = {c.name for c in clusters if c.reachable and c.service == IN_SERVICE}
    alone_matters = superclustered or any(c.reachable and not c.standalone for c in clusters)
    names: dict[str, str] = {}
    managed: set[str] = set()
    for view in views:
        for t in view.territories:
            names.setdefault(t.territory_id, t.name or t.territory_id)
            if {t.primary, t.backup} & serving & set(view.members):
                managed.add(t.territory_id)
    return ServiceImpact(
        out_of_service=tuple((c.name, _why(c)) for c in clusters if c.name not in serving),
        standalone=tuple(c.name for c in clusters
                         if alone_matters and c.reachable and c.standalone),
        unmanaged=tuple(sorted(names[tid] for tid in names if tid not in managed)))
