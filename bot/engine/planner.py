"""Choose a strategy and make a plan from facts read off the clusters (pure: no I/O).

The public planning API lives here; the step graphs are in `procedures`, the value types in
`plans`, list scheduling in `schedule`, JSON in `plan_json` (all re-exported).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from bot.engine.gate import gate_digest
from bot.engine.guide import INCREMENTAL_FACTORS, PREFLIGHT_CHECKLIST
from bot.engine.plan_json import plan_from_json, plan_to_json
from bot.engine.plans import (
    PLANNABLE,
    ClusterFacts,
    Plan,
    PlanningError,
    PlanRequest,
    PlanTiming,
    StepKind,
    StepSpec,
    Strategy,
    TerritoryFacts,
)
from bot.engine.procedures import build_steps
from bot.engine.schedule import parallel_limits, schedule_estimate
from bot.engine.versions import InvalidVersion, Version, compatible, parse_version

__all__ = [
    "INCREMENTAL_FACTORS", "PREFLIGHT_CHECKLIST", "ClusterFacts", "Plan", "PlanRequest",
    "PlanTiming", "PlanningError", "StepKind", "StepSpec", "Strategy", "TerritoryFacts",
    "choose_strategy", "make_plan", "plan_from_json", "plan_to_json", "request_digest",
    "schedule_estimate",
]

_ROLLING = ("basic upgrade, one cluster at a time while the others stay in service")
_OUTAGE = ("full-outage: every cluster is taken out of service, upgraded on its own and joined "
           "to a new supercluster; the simplest and fastest way (as little as an hour or two), "
           "and it needs a maintenance window")
_INCREMENTAL = ("incremental: clusters leave one at a time and join a new supercluster, so some "
                "(greatly reduced) service is kept; it takes five or more times as long as "
                "full-outage, and the ten factors below apply")
_VENDOR_RULE = ("a cluster cannot be upgraded to an incompatible version while it is a member of "
                "a supercluster")


def choose_strategy(request: PlanRequest) -> tuple[Strategy, tuple[str, ...]]:
    """Resolve the requested strategy and say why; raise PlanningError when none fits."""
    request = _normalized(request)
    target, versions = _checked_versions(request)
    requested = Strategy(request.strategy)
    if request.target_kind == "cluster":
        return _standalone(request, requested)
    old = {n: v for n, v in versions.items() if v != target}
    fits = request.compatible_override
    if fits is None:
        fits = all(compatible(v, target) for v in versions.values())
    reasons = _compatibility_reasons(request, target, versions, fits)
    if requested is Strategy.INCREMENTAL:
        if len(request.clusters) < 2:
            raise PlanningError(f"strategy=incremental needs at least two clusters; "
                                f"{request.target} has one: use strategy=full-outage")
        return Strategy.INCREMENTAL, (*reasons, _sentence(_INCREMENTAL), *_already(request, old))
    if requested is Strategy.FULL_OUTAGE or not fits:
        if requested is Strategy.BASIC:
            raise PlanningError(
                f"basic cannot upgrade {request.target} to {request.to_version}: {reasons[-1]} "
                "Use strategy=full-outage (complete outage in a window) or "
                "strategy=incremental (some service kept, five or more times as long).")
        if fits:
            reasons.append(f"full-outage was asked for; basic would keep {request.target} in "
                           "service cluster by cluster.")
        return Strategy.FULL_OUTAGE, (*reasons, _sentence(_OUTAGE), *_already(request, old))
    # "same MAJOR.MINOR" is only true when the numbers decided, not the supercluster's answer.
    same = "" if request.compatible_override else f" (same {target.major}.{target.minor})"
    reasons.append(f"{request.to_version} is compatible with every cluster of {request.target}"
                   f"{same}: {_ROLLING}.")
    return Strategy.BASIC, (*reasons, *_unserved(request, old), *_left_out(request, old))


def _compatibility_reasons(request: PlanRequest, target: Version,
                           versions: Mapping[str, Version], fits: bool) -> list[str]:
    """Say who decided compatibility and, when incompatible, the vendor's rule."""
    reasons: list[str] = []
    if request.compatible_override is not None:
        reasons.append(f"The supercluster's compatibility check says {request.to_version} is "
                       f"{'' if fits else 'not '}compatible; that answer wins.")
    if not fits:
        misfits = _listing({n: v for n, v in versions.items() if not compatible(v, target)})
        reasons.append(f"{request.to_version} is not compatible with "
                       f"{misfits or 'the supercluster'} (different major or minor), and "
                       f"{_VENDOR_RULE}.")
    return reasons


def _already(request: PlanRequest, old: Mapping[str, Version]) -> tuple[str, ...]:
    done = [c.name for c in request.clusters if c.name not in old]
    if not done:
        return ()
    return (f"{', '.join(done)} already on {request.to_version}: the run finds it there and "
            "does not install again.",)


def make_plan(request: PlanRequest) -> Plan:
    """Make the whole plan: strategy, ordered steps, estimates, texts and the request digest."""
    request = _normalized(request)
    strategy, reasons = choose_strategy(request)
    if request.emergency:
        reasons = (*reasons, "EMERGENCY: the plan was made with `emergency`, so a cluster may be "
                   "installed with calls still up (the guide allows it only in an emergency).")
    target = parse_version(request.to_version)
    if strategy is Strategy.BASIC and request.target_kind == "supercluster":
        order = tuple(c.name for c in request.clusters if parse_version(c.version) != target)
    elif strategy is Strategy.FULL_OUTAGE:
        order = critical_path_order(request)
    elif strategy is Strategy.INCREMENTAL:
        order = by_load(request)
        reasons = (*reasons, _order_reason(request, order))
    else:
        order = tuple(c.name for c in request.clusters)
    seed = order[0] if strategy in (Strategy.FULL_OUTAGE, Strategy.INCREMENTAL) else None
    steps = build_steps(request, strategy, order, seed)
    total, times = schedule_estimate(steps, max_parallel=parallel_limits(request.timing))
    if strategy is Strategy.INCREMENTAL:
        reasons = (*reasons, _time_made_of(request, steps, total))
    return Plan(
        target=request.target, target_kind=request.target_kind, to_version=request.to_version,
        from_versions=tuple((c.name, c.version) for c in request.clusters),
        strategy=strategy, requested=Strategy(request.strategy), reasons=reasons, order=order,
        seed=seed, steps=steps,
        cluster_estimates=tuple((c, sum(s.estimate_s for s in steps if s.cluster == c))
                                for c in order),
        total_estimate_s=total,
        outage_estimate_s=_outage(steps, times) if strategy is Strategy.FULL_OUTAGE else None,
        needs_window=strategy is Strategy.FULL_OUTAGE,
        factors=INCREMENTAL_FACTORS if strategy is Strategy.INCREMENTAL else (),
        checklist=PREFLIGHT_CHECKLIST, digest=request_digest(request),
        emergency=request.emergency, prechecks=request.prechecks)


def by_load(request: PlanRequest) -> tuple[str, ...]:
    """Incremental order: the least loaded cluster leaves first; conference-room hosts last."""
    hosts = {t.primary for t in request.territories if t.conference_room_host}
    rank = {c.name: i for i, c in enumerate(request.clusters)}
    return tuple(c.name for c in sorted(request.clusters, key=lambda c: (
        c.name in hosts, c.active_calls or 0, c.registrations or 0, rank[c.name])))


def _order_reason(request: PlanRequest, order: Sequence[str]) -> str:
    facts = {c.name: c for c in request.clusters}
    hosts = {t.primary for t in request.territories if t.conference_room_host}
    said = [f"{n} ({facts[n].active_calls or 0} calls, {facts[n].registrations or 0} "
            f"registrations{', hosts conference rooms' if n in hosts else ''})" for n in order]
    return ("Order by load as the clusters report it, the least loaded leaving first so the "
            "old supercluster keeps the most capacity, conference-room hosts last: "
            + ", ".join(said) + f". {order[0]} seeds the new supercluster.")


def _time_made_of(request: PlanRequest, steps: Sequence[StepSpec], total: float) -> str:
    people = [s for s in steps if s.kind is StepKind.PEOPLE_WORK]
    people_s = sum(s.estimate_s for s in people)
    full = build_steps(request, Strategy.FULL_OUTAGE, tuple(c.name for c in request.clusters),
                       request.clusters[0].name)
    full_s, _ = schedule_estimate(full, max_parallel=parallel_limits(request.timing))
    return (f"The estimate is {_hm(total - people_s)} of steps the bot runs plus "
            f"{len(people)} x {_hm(request.timing.people_time_s)} of people's work after each "
            "cluster joins (re-provisioning endpoints, DNS, Conference Manager, bandwidth: "
            f"factors 5, 8, 9, 10; timing.incremental_people_time): {_hm(total)} in all, "
            f"{total / full_s:.1f} times the full-outage estimate ({_hm(full_s)}).")


def _hm(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def request_digest(request: PlanRequest) -> str:
    """Return the sha256 hex of a canonical JSON of everything the plan is computed from."""
    with contextlib.suppress(PlanningError):
        request = _normalized(request)
    timing = {k: v if k == "max_parallel_installs" else float(v)
              for k, v in asdict(request.timing).items()}
    clusters = [{**asdict(c), "estimated_install_minutes": None
                 if c.estimated_install_minutes is None else float(c.estimated_install_minutes)}
                for c in request.clusters]
    clusters = [{k: v for k, v in c.items() if k not in ("active_calls", "registrations")}
                for c in clusters]  # live counters: they change from one minute to the next
    payload: dict[str, Any] = {
        "target": request.target, "target_kind": request.target_kind,
        "to_version": request.to_version, "strategy": Strategy(request.strategy).value,
        "compatible_override": request.compatible_override, "clusters": clusters,
        "emergency": request.emergency, "supercluster": request.supercluster,
        # What the validation gate read: the facts the approvers approve (live counters aside).
        "gate": gate_digest(request.prechecks),
        # Sorted: the order a cluster lists its territories in changes nothing in the plan.
        "territories": sorted((asdict(t) for t in request.territories),
                              key=lambda t: t["territory_id"]),
        "timing": timing,
    }
    if request.seed is not None:  # absent when unpinned: digests of earlier plans stay valid
        payload["seed"] = request.seed
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _normalized(request: PlanRequest) -> PlanRequest:
    """Return the request with its target version written plainly ("v10.1.0.1 " -> "10.1.0.1")."""
    try:
        strategy = Strategy(request.strategy)
        if strategy not in PLANNABLE:
            raise ValueError(strategy)
    except ValueError:
        raise PlanningError(f"unknown strategy '{request.strategy}': expected "
                            f"{', '.join(s.value for s in PLANNABLE)}") from None
    try:
        return replace(request, to_version=str(parse_version(request.to_version)),
                       strategy=strategy)
    except InvalidVersion as exc:
        raise PlanningError(str(exc)) from None


def _checked_versions(request: PlanRequest) -> tuple[Version, dict[str, Version]]:
    """Check the request's shape and versions; return the target and each cluster's version."""
    target = parse_version(request.to_version)
    if not request.clusters:
        raise PlanningError(f"{request.target} has no clusters: list them in the configuration")
    names = [c.name for c in request.clusters]
    if len(set(names)) != len(names):
        raise PlanningError(f"{request.target} lists a cluster twice: {', '.join(names)}")
    if request.target_kind == "cluster" and len(names) != 1:
        raise PlanningError(f"{request.target} is a stand-alone cluster, but {len(names)} clusters "
                            "were given: plan a supercluster, or one cluster")
    versions: dict[str, Version] = {}
    for cluster in request.clusters:
        if cluster.servers not in (1, 2):
            raise PlanningError(f"{cluster.name} has {cluster.servers} servers; a DMA cluster "
                                "has one or two: fix the inventory")
        try:
            versions[cluster.name] = parse_version(cluster.version)
        except InvalidVersion as exc:
            raise PlanningError(f"{cluster.name} reports a version that cannot be compared: "
                                f"{exc}") from None
    _check_direction(request, target, versions)
    return target, versions


def _check_direction(request: PlanRequest, target: Version,
                     versions: Mapping[str, Version]) -> None:
    if all(v == target for v in versions.values()):
        raise PlanningError(f"{request.target} is already on {request.to_version}: nothing to "
                            "upgrade; name a newer version")
    newer = {n: v for n, v in versions.items() if v > target}
    if newer:
        raise PlanningError(
            f"{request.to_version} is older than {_listing(newer)}: this bot only upgrades; "
            "rolling back is a separate procedure (only the last upgrade can be undone, one "
            "stand-alone cluster at a time)")


def _standalone(request: PlanRequest, requested: Strategy) -> tuple[Strategy, tuple[str, ...]]:
    name, sc = request.clusters[0].name, request.supercluster
    if sc is not None:
        return _one_member(request, requested, name, sc)
    if requested not in (Strategy.AUTO, Strategy.BASIC):
        raise PlanningError(f"strategy={requested.value} applies to a supercluster; {name} is a "
                            "stand-alone cluster, so use strategy=basic (or auto)")
    return Strategy.BASIC, (f"{name} is a stand-alone cluster: basic upgrade (read its calls, "
                            "busy out, drain, out of service, install, log back in, verify, "
                            "return to service).",)


def _one_member(request: PlanRequest, requested: Strategy, name: str,
                sc: str) -> tuple[Strategy, tuple[str, ...]]:
    """A cluster of a supercluster: only a compatible patch may be planned for it alone."""
    target = parse_version(request.to_version)
    fits = request.compatible_override
    if fits is None:
        fits = compatible(parse_version(request.clusters[0].version), target)
    if not fits:
        said = (" (the supercluster's check-compatibility says so)"
                if request.compatible_override is not None else " (different major or minor)")
        raise PlanningError(
            f"{name} is a member of supercluster {sc}, and {request.to_version} is not "
            f"compatible{said}: {_VENDOR_RULE}. Plan the whole supercluster instead: "
            f"`/upgrade plan {sc} {request.to_version} strategy=full-outage` (or "
            "strategy=incremental).")
    if requested not in (Strategy.AUTO, Strategy.BASIC):
        raise PlanningError(f"strategy={requested.value} applies to a supercluster; {name} alone "
                            f"gets a basic upgrade (or plan {sc})")
    return Strategy.BASIC, (f"{name} is a member of supercluster {sc} and {request.to_version} "
                            "is compatible: basic upgrade of this cluster alone, busied out and "
                            "drained while the others stay in service (its territories fail "
                            "over to their backups).",)


def _left_out(request: PlanRequest, old: Mapping[str, Version]) -> tuple[str, ...]:
    return tuple(f"{c.name} is already on {request.to_version} and is left out."
                 for c in request.clusters if c.name not in old)


def _unserved(request: PlanRequest, old: Mapping[str, Version]) -> list[str]:
    """Warn about territories that lose service while their primary is busied out."""
    return [f"Territory {t.name or t.territory_id} has no backup: it is not served while "
            f"{t.primary} is busied out."
            for t in request.territories if t.backup is None and t.primary in old]


def _listing(versions: Mapping[str, Version]) -> str:
    return ", ".join(f"{name} ({version})" for name, version in versions.items())


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + "."


def critical_path_order(request: PlanRequest) -> tuple[str, ...]:
    """The full outage's order: cluster A first, then the others, longest install first.

    Removals go one at a time (membership changes of one supercluster do), and each install
    starts once its cluster is stand-alone, so the longest installs leave first. Cluster A is
    stand-alone only when every other cluster has left: unless the configuration pins it, it is
    the cluster with the shortest install, which makes it ready first. Ties keep file order.
    """
    default = request.timing.install_estimate_s / 60.0
    install = {c.name: (c.estimated_install_minutes if c.estimated_install_minutes is not None
                        else default) for c in request.clusters}
    names = [c.name for c in request.clusters]
    if request.seed is not None and request.seed not in install:
        raise PlanningError(f"the configured seed {request.seed} is not a cluster of "
                            f"{request.target}: {', '.join(names)}")
    seed = request.seed or min(names, key=lambda n: install[n])  # min keeps the first of ties
    others = sorted((n for n in names if n != seed), key=lambda n: -install[n])
    return (seed, *others)


def _outage(steps: Sequence[StepSpec], times: Mapping[str, tuple[float, float]]) -> float | None:
    """From the first busy-out start to the last return-to-service end."""
    starts = [times[s.key][0] for s in steps
              if s.kind in (StepKind.BUSY_OUT, StepKind.OUT_OF_SERVICE)]
    ends = [times[s.key][1] for s in steps if s.kind is StepKind.RETURN_TO_SERVICE]
    return max(ends) - min(starts) if starts and ends else None
