"""The service impact now: clusters out of service, stand-alone ones, unserved territories.

Pure: it reads a supercluster view and the territories as some member reported them. Every abort
and escalation notice states this impact (DESIGN.md, "Recovery").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.dma.models import SuperclusterView, Territory

IN_SERVICE = "IN_SERVICE"


@dataclass(frozen=True)
class ServiceImpact:
    """What is not serving now; `known` is False when no cluster answered to tell."""

    out_of_service: tuple[tuple[str, str], ...] = ()  # (cluster, why: "busied out", …)
    standalone: tuple[str, ...] = ()
    unserved: tuple[str, ...] = ()  # territory names
    known: bool = True

    def lines(self) -> list[str]:
        """The impact as short lines people read."""
        if not self.known:
            return ["unknown: no cluster of the target answered"]
        out = ", ".join(f"{c} ({why})" for c, why in self.out_of_service) or "none"
        return [f"Clusters out of service: {out}",
                f"Stand-alone clusters: {', '.join(self.standalone) or 'none'}",
                f"Territories with no in-service manager: {', '.join(self.unserved) or 'none'}"]

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"out_of_service": [list(p) for p in self.out_of_service],
                "standalone": list(self.standalone), "unserved": list(self.unserved),
                "known": self.known}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ServiceImpact:
        """Read the stored form back (an absent one is unknown)."""
        if not data:
            return cls(known=False)
        return cls(tuple((str(c), str(w)) for c, w in data.get("out_of_service", [])),
                   tuple(data.get("standalone", [])), tuple(data.get("unserved", [])),
                   bool(data.get("known", True)))


def service_impact(*, clusters: Sequence[str], view: SuperclusterView | None,
                   territories: Sequence[Territory], silent: Collection[str],
                   superclustered: bool) -> ServiceImpact:
    """Say what does not serve: `silent` clusters did not answer; `clusters` are the target's."""
    if view is None:
        return ServiceImpact(known=False)
    out: list[tuple[str, str]] = []
    alone: list[str] = []
    serving: set[str] = set()
    for name in clusters:
        member = view.member(name)
        if name in silent:
            out.append((name, "not answering"))
        elif member is not None and member.service_status != IN_SERVICE:
            out.append((name, member.service_status.lower().replace("_", " ")))
        elif member is not None:
            serving.add(name)
        if superclustered and (member is None or member.status == "STANDALONE"):
            alone.append(name)
    unserved = [t.name or t.territory_id for t in territories
                if t.active is None or t.active not in serving]
    return ServiceImpact(tuple(out), tuple(alone), tuple(unserved))
