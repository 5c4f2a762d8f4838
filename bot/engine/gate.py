"""The validation gate: what every cluster shows before a run, judged, digested and compared (pure).

Like a storage array's automated update validation: when the plan is made and again when the run
starts, every cluster is read (servers, private link, alerts, service status, calls and
registrations), and the supercluster (membership, warnings, territory plan, and the DMA's own
`check-compatibility` answer). Each row says whether it passes; the facts of the rows form the
digest the approvers approved, so any drift at the start is found and named.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine.plans import PreCheck, TerritoryFacts


@dataclass(frozen=True)
class ClusterReading:
    """One cluster as the gate read it."""

    name: str
    servers_expected: int
    version: str
    servers_up: int
    link_up: bool
    alerts: tuple[str, ...]
    service: str | None
    calls: int
    registrations: int


@dataclass(frozen=True)
class GateReading:
    """Everything the gate read for one target."""

    target: str
    clusters: tuple[ClusterReading, ...]
    members: tuple[str, ...] | None = None  # the supercluster's members as it lists them
    expected_members: tuple[str, ...] | None = None  # as the inventory (or the plan) has them
    warnings: tuple[str, ...] = ()
    territories: tuple[TerritoryFacts, ...] = ()
    compatible: bool | None = None  # the DMA's check-compatibility answer, when asked
    compatibility_message: str = ""


# What to do when a row fails, by check name (the thread says it beside the failure).
REMEDY: dict[str, str] = {
    "servers up": "bring the server up (DMA web UI, Dashboard), then retry",
    "private link": "repair the private network link between the two servers, then retry",
    "alerts": "clear the active alerts on the Dashboard, then retry",
    "service": "return the cluster to service (or plan without it), then retry",
    "membership": "fix the supercluster (or the inventory) so they agree, then plan again",
    "supercluster warnings": "resolve the supercluster's warnings, then retry",
    "territory plan": "give every territory a primary and backup that are members, then plan "
                      "again",
}


def evaluate(reading: GateReading) -> tuple[PreCheck, ...]:
    """Judge a reading: one row per check, each with the fact that the digest covers."""
    rows: list[PreCheck] = []
    for c in reading.clusters:
        rows.extend(_cluster_rows(c))
    if reading.members is not None:
        rows.extend(_supercluster_rows(reading))
    return tuple(rows)


def _cluster_rows(c: ClusterReading) -> list[PreCheck]:
    up = f"{c.servers_up} of {c.servers_expected} up"
    link = ("one server: no private link" if c.servers_expected < 2
            else f"private link {'up' if c.link_up else 'down'}")
    alerts = "; ".join(sorted(c.alerts)) or "none"
    return [
        PreCheck(c.name, "version", True, f"runs {c.version}", c.version),
        PreCheck(c.name, "servers up", c.servers_up >= c.servers_expected, up, up),
        PreCheck(c.name, "private link", c.servers_expected < 2 or c.link_up, link, link),
        PreCheck(c.name, "alerts", not c.alerts, f"active alerts: {alerts}", alerts),
        PreCheck(c.name, "service", c.service == "IN_SERVICE", c.service or "not listed",
                 c.service or "not listed"),
        # Live counters: shown, never in the digest (calls end and start all the time).
        PreCheck(c.name, "calls and registrations", True,
                 f"{c.calls} active calls, {c.registrations} registrations"),
    ]


def _supercluster_rows(r: GateReading) -> list[PreCheck]:
    members = tuple(sorted(r.members or ()))
    expected = tuple(sorted(r.expected_members or members))
    listed = ", ".join(members) or "none"
    plan = "; ".join(f"{t.territory_id} {t.primary or '-'}/{t.backup or '-'}"
                     f"{' rooms' if t.conference_room_host else ''}"
                     for t in sorted(r.territories, key=lambda t: t.territory_id))
    strays = [t.territory_id for t in r.territories
              if any(n is not None and n not in members for n in (t.primary, t.backup))]
    rows = [
        PreCheck(r.target, "membership", members == expected,
                 f"lists {listed}" + ("" if members == expected
                                     else f"; the inventory has {', '.join(expected)}"),
                 listed),
        PreCheck(r.target, "supercluster warnings", not r.warnings,
                 "; ".join(r.warnings) or "no warnings", "; ".join(sorted(r.warnings))),
        PreCheck(r.target, "territory plan", not strays,
                 (f"{len(r.territories)} territories" if not strays else
                  f"{', '.join(strays)} name a cluster outside the supercluster")
                 + (f": {plan}" if plan else ""), plan),
    ]
    if r.compatible is not None:
        said = "compatible" if r.compatible else "not compatible"
        rows.append(PreCheck(r.target, "check-compatibility", True,
                             f"the DMA says {said} ({r.compatibility_message}); its answer "
                             "wins over version arithmetic", said))
    return rows


def gate_digest(rows: Sequence[PreCheck]) -> str:
    """The sha256 of the facts the approvers saw (live counters excluded)."""
    facts = sorted([r.cluster, r.check, r.fact] for r in rows if r.fact)
    text = json.dumps(facts, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def failures(rows: Sequence[PreCheck]) -> list[str]:
    """Each failed row as 'check on cluster: detail; what to do'."""
    return [f"{r.check} on {r.cluster} failed: {r.detail} (what to do: "
            f"{REMEDY.get(r.check, 'fix it, then retry')})" for r in rows if not r.ok]


def drift(approved: Sequence[PreCheck], now: Sequence[PreCheck]) -> list[str]:
    """What changed since the plan was approved, fact by fact ('on X, check: was A, now B')."""
    before = {(r.cluster, r.check): r.fact for r in approved if r.fact}
    after = {(r.cluster, r.check): r.fact for r in now if r.fact}
    changes = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            cluster, check = key
            changes.append(f"on {cluster}, {check}: was {before.get(key) or 'not read'}, "
                           f"now {after.get(key) or 'not read'}")
    return changes
