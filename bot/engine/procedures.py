"""The vendor's procedures as step graphs: one builder per strategy (dma-procedures.md).

Keys are "<kind>:<cluster>" for per-cluster steps and "<kind>" for supercluster-wide ones; the
deps, not the list order, say what must finish first. The list order is the display order and the
priority among steps that are ready at the same time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.engine.plans import (
    ClusterFacts,
    ParamValue,
    PlanRequest,
    StepKind,
    StepSpec,
    Strategy,
)
from bot.engine.versions import same_version

K = StepKind

# Which PlanTiming field estimates each kind (install and upload have special cases below).
_TIMING_FIELD: dict[StepKind, str] = {
    K.PREFLIGHT: "short_step_s", K.UPLOAD: "upload_estimate_s",
    K.RECORD_TERRITORIES: "territory_step_s", K.REASSIGN_TERRITORIES: "territory_step_s",
    K.BUSY_OUT: "short_step_s", K.DRAIN: "drain_estimate_s", K.OUT_OF_SERVICE: "short_step_s",
    K.REMOVE: "leave_estimate_s", K.INSTALL: "install_estimate_s", K.WAIT_LOGIN: "login_grace_s",
    K.VERIFY: "verify_estimate_s", K.LICENCE_KEYS: "short_step_s", K.JOIN: "join_estimate_s",
    K.MOVE_TERRITORIES: "territory_step_s", K.RESTORE_TERRITORIES: "territory_step_s",
    K.RETURN_TO_SERVICE: "short_step_s", K.CHECK_TERRITORIES: "territory_step_s",
    K.FINAL_CHECK: "verify_estimate_s", K.PEOPLE_WORK: "people_time_s",
}

_TITLE: dict[StepKind, str] = {
    K.PREFLIGHT: "Pre-flight: re-read {target} and confirm the checklist",
    K.UPLOAD: "Upload the {v} package to {c}",
    K.RECORD_TERRITORIES: "Record every territory of {target} (primary, backup, conference rooms)",
    K.REASSIGN_TERRITORIES: "Reassign {c}'s territories to {stay}",
    K.BUSY_OUT: "Busy out {c} (running calls go on, no new conferences)",
    K.DRAIN: "Wait for the calls on {c} to end",
    K.OUT_OF_SERVICE: "Take {c} out of service",
    K.REMOVE: "Remove {c} from the supercluster (via {via})",
    K.INSTALL: "Install {v} on {c} ({servers})",
    K.WAIT_LOGIN: "Wait for {c} to restart, then log back in",
    K.VERIFY: "Verify {c}: servers up, package versions, private link, history",
    K.LICENCE_KEYS: "Install licence keys on {c} if {v} needs them",
    K.JOIN: "Join {c} to the new supercluster of {seed}",
    K.MOVE_TERRITORIES: "Move territories to the new supercluster ({new})",
    K.RESTORE_TERRITORIES: "Restore the recorded territory assignments (via {via})",
    K.RETURN_TO_SERVICE: "Return {c} to service",
    K.CHECK_TERRITORIES: "Check that {c}'s territories are back on their primary",
    K.FINAL_CHECK: "Final check of {target}: clusters, servers, versions, warnings, territories",
    K.PEOPLE_WORK: "People's work after {c} joined: endpoints, DNS, Conference Manager, "
                   "bandwidth (Done, continue)",
}


def already_uploaded(cluster: ClusterFacts, version: str) -> bool:
    """Return True when the cluster already holds the target package."""
    return same_version(cluster.upgrade_version, version)


@dataclass
class _Graph:
    """Accumulates steps for one request; estimates and titles come from the tables above."""

    request: PlanRequest
    steps: list[StepSpec] = field(default_factory=list)

    def add(self, kind: StepKind, cluster: str | None, deps: Sequence[str], *,
            title: str | None = None, safe_point: bool = False,
            **params: ParamValue) -> str:
        return self._append(kind, cluster, deps, title, safe_point, params)

    def _append(self, kind: StepKind, cluster: str | None, deps: Sequence[str],
                title: str | None, safe_point: bool, params: Mapping[str, ParamValue]) -> str:
        key = kind.value if cluster is None else f"{kind.value}:{cluster}"
        facts = self._facts(cluster)
        words: dict[str, str] = {"target": self.request.target, "v": self.request.to_version,
                                 "c": cluster or "", "servers": _servers(facts)}
        words.update({k: ", ".join(v) if isinstance(v, tuple) else v for k, v in params.items()})
        if kind is K.UPLOAD and facts and already_uploaded(facts, self.request.to_version):
            title = title or "Confirm that the {v} package is uploaded on {c}"
        if kind is K.VERIFY and facts and facts.servers == 1:
            title = title or "Verify {c}: server up, package version, history"
        self.steps.append(StepSpec(
            key=key, kind=kind, cluster=cluster, deps=tuple(deps),
            estimate_s=self._estimate(kind, facts), title=(title or _TITLE[kind]).format(**words),
            params=tuple(params.items()), safe_point=safe_point))
        return key

    def chain(self, cluster: str, kinds: Sequence[StepKind], after: str) -> str:
        """Add steps on one cluster, each after the previous; return the last key."""
        for kind in kinds:
            after = self._append(kind, cluster, (after,), None, False,
                                 self._default_params(kind, cluster))
        return after

    def uploads(self, clusters: Sequence[str], after: str) -> tuple[str, ...]:
        return tuple(self.add(K.UPLOAD, c, (after,), version=self.request.to_version)
                     for c in clusters)

    def territories(self, *, primary: str | None = None) -> tuple[str, ...]:
        """Territory ids: all of them, or those with this primary."""
        found = [t.territory_id for t in self.request.territories
                 if primary is None or t.primary == primary]
        # Sorted, so the plan does not depend on the order the cluster listed them in.
        return tuple(sorted(found))

    def _default_params(self, kind: StepKind, cluster: str) -> dict[str, ParamValue]:
        facts = self._facts(cluster)
        if kind in (K.INSTALL, K.DRAIN) and self.request.emergency:
            # The plan said `emergency`: calls may still be up when the install starts.
            return {"version": self.request.to_version, "emergency": "yes"}
        if kind is K.INSTALL:
            return {"version": self.request.to_version}
        if kind is K.VERIFY and facts:
            return {"version": self.request.to_version, "servers": str(facts.servers)}
        return {}

    def _facts(self, cluster: str | None) -> ClusterFacts | None:
        return next((c for c in self.request.clusters if c.name == cluster), None)

    def _estimate(self, kind: StepKind, facts: ClusterFacts | None) -> float:
        timing = self.request.timing
        if kind is K.INSTALL and facts and facts.estimated_install_minutes is not None:
            return float(facts.estimated_install_minutes) * 60.0
        if kind is K.UPLOAD and facts and already_uploaded(facts, self.request.to_version):
            return float(timing.short_step_s)
        if kind is K.MOVE_TERRITORIES:  # two changes, each waited for: new, then old released
            return 2.0 * float(timing.territory_step_s)
        return float(getattr(timing, _TIMING_FIELD[kind]))


def _servers(facts: ClusterFacts | None) -> str:
    if facts is None:
        return ""
    return "both servers" if facts.servers == 2 else "one server"


def _basic_standalone(g: _Graph, order: tuple[str, ...], seed: str | None) -> None:
    # Guide: "do not upgrade with calls active except in an emergency". A stand-alone cluster (or
    # one member, for a compatible patch) is busied out, drained and taken out of service first.
    (name,) = order
    (upload,) = g.uploads(order, g.add(K.PREFLIGHT, None, ()))
    step = g.add(K.BUSY_OUT, name, (upload,), safe_point=True)
    step = g.chain(name, (K.DRAIN, K.OUT_OF_SERVICE, K.INSTALL, K.WAIT_LOGIN, K.VERIFY,
                          K.LICENCE_KEYS, K.RETURN_TO_SERVICE), step)
    if g.request.supercluster is not None:
        g.add(K.CHECK_TERRITORIES, name, (step,), territories=g.territories(primary=name))


def _basic_supercluster(g: _Graph, order: tuple[str, ...], seed: str | None) -> None:
    # Nothing is busied out until every package is in place; then one cluster at a time.
    after = g.uploads(order, g.add(K.PREFLIGHT, None, ()))
    for name in order:
        step = g.add(K.BUSY_OUT, name, after, safe_point=True)
        step = g.chain(name, (K.DRAIN, K.INSTALL, K.WAIT_LOGIN, K.VERIFY, K.LICENCE_KEYS,
                              K.RETURN_TO_SERVICE), step)
        after = (g.add(K.CHECK_TERRITORIES, name, (step,),
                       territories=g.territories(primary=name)),)
    _final_check(g, after)


def _full_outage(g: _Graph, order: tuple[str, ...], seed: str | None) -> None:
    assert seed is not None
    others = [c for c in order if c != seed]
    everything = g.territories()
    record = g.add(K.RECORD_TERRITORIES, None, g.uploads(order, g.add(K.PREFLIGHT, None, ())),
                   territories=everything)
    busy = [g.add(K.BUSY_OUT, c, (record,), safe_point=True) for c in order]
    drained = [g.add(K.DRAIN, c, (b,)) for c, b in zip(order, busy, strict=True)]
    out = tuple(g.add(K.OUT_OF_SERVICE, c, (d,)) for c, d in zip(order, drained, strict=True))
    # With the seed primary of everything and no backups, the others can leave.
    after = g.add(K.REASSIGN_TERRITORIES, None, out, to=seed, territories=everything,
                  title="Make {to} primary of every territory, with no backup")
    removed: dict[str, str] = {}
    for name in others:
        after = removed[name] = g.add(K.REMOVE, name, (after,), via=seed)
    # The seed is stand-alone only once every other cluster has left.
    ready = {name: g.chain(name, (K.WAIT_LOGIN, K.VERIFY, K.LICENCE_KEYS),
                           g.add(K.INSTALL, name, (removed.get(name, after),),
                                 version=g.request.to_version))
             for name in order}
    # Each joins as soon as it and the seed are ready; the join limit (one membership change
    # of a supercluster at a time) orders them, so a slow install never holds a ready cluster.
    joins = tuple(g.add(K.JOIN, name, tuple(dict.fromkeys((ready[seed], ready[name]))),
                        safe_point=True, seed=seed) for name in others)
    restore = g.add(K.RESTORE_TERRITORIES, None, joins or (ready[seed],), via=seed,
                    territories=everything)
    _final_check(g, tuple(g.add(K.RETURN_TO_SERVICE, c, (restore,)) for c in order))


def _incremental(g: _Graph, order: tuple[str, ...], seed: str | None) -> None:
    """Clusters leave one at a time, least loaded first; no territory is ever left unserved.

    Before a cluster is busied out, every territory it serves moves to clusters that stay in
    service (for the last one: into the new supercluster); a territory moved into the new
    supercluster is released in the old one. After each cluster is in the new supercluster the
    run pauses for the people's work of the factors (endpoints, DNS, Conference Manager,
    bandwidth) until an operator says "Done, continue".
    """
    assert seed is not None
    *leaving, last = order
    everything = g.territories()
    after = g.add(K.RECORD_TERRITORIES, None, g.uploads(order, g.add(K.PREFLIGHT, None, ())),
                  territories=everything)
    for index, name in enumerate(leaving):
        stay, new = tuple(order[index + 1:]), tuple(order[:index + 1])
        after = g.add(K.REASSIGN_TERRITORIES, name, (after,), safe_point=True,
                      away_from=name, stay=stay)
        after = g.chain(name, (K.BUSY_OUT, K.DRAIN), after)
        after = g.add(K.REMOVE, name, (after,), via=last)
        after = g.chain(name, (K.INSTALL, K.WAIT_LOGIN, K.VERIFY, K.LICENCE_KEYS), after)
        if name != seed:
            after = g.add(K.JOIN, name, (after,), seed=seed)
        after = g.add(K.RETURN_TO_SERVICE, name, (after,))
        after = g.add(K.MOVE_TERRITORIES, name, (after,), new=new, old=stay,
                      title="Move the territories of {new} into the new supercluster; release "
                            "them in the old one")
        after = g.add(K.PEOPLE_WORK, name, (after,))
    # The last cluster serves everything left in the old supercluster: all of it moves first.
    after = g.add(K.MOVE_TERRITORIES, last, (after,), safe_point=True, new=tuple(leaving),
                  old=(last,), every="yes",
                  title="Move every territory left on {c} into the new supercluster; release "
                        "them in the old one")
    after = g.chain(last, (K.BUSY_OUT, K.DRAIN, K.INSTALL, K.WAIT_LOGIN, K.VERIFY,
                           K.LICENCE_KEYS), after)
    after = g.add(K.JOIN, last, (after,), seed=seed)
    after = g.add(K.RETURN_TO_SERVICE, last, (after,))
    after = g.add(K.RESTORE_TERRITORIES, None, (after,), via=seed, territories=everything)
    after = g.add(K.PEOPLE_WORK, last, (after,))
    _final_check(g, (after,))


def _final_check(g: _Graph, after: Sequence[str]) -> None:
    g.add(K.FINAL_CHECK, None, after, clusters=tuple(c.name for c in g.request.clusters),
          version=g.request.to_version)


_Builder = Callable[[_Graph, tuple[str, ...], str | None], None]
_BUILDERS: dict[tuple[Strategy, str], _Builder] = {
    (Strategy.BASIC, "cluster"): _basic_standalone,
    (Strategy.BASIC, "supercluster"): _basic_supercluster,
    (Strategy.FULL_OUTAGE, "supercluster"): _full_outage,
    (Strategy.INCREMENTAL, "supercluster"): _incremental,
}


def build_steps(request: PlanRequest, strategy: Strategy, order: tuple[str, ...],
                seed: str | None) -> tuple[StepSpec, ...]:
    """Return the steps of a resolved strategy for the clusters in order."""
    graph = _Graph(request)
    _BUILDERS[(strategy, request.target_kind)](graph, order, seed)
    return tuple(graph.steps)
