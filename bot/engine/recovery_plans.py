"""Recovery plans from the clusters as they are: one cluster's rollback, a served network (pure).

`plan_rollback` follows the guide's rollback procedure for one cluster; `plan_restore` plans the
way back to a served network after an abort or an escalation. Both return an ordinary `Plan`
(strategy ROLLBACK or RESTORE) that is posted, approved and run by the same engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from bot.engine.plans import Plan, PlanTiming, StepKind, StepSpec, Strategy, TerritoryFacts
from bot.engine.recovery import ClusterNow, Recovered, RecoveryError, family
from bot.engine.schedule import parallel_limits, schedule_estimate

K = StepKind
Assignment = tuple[str | None, str | None]

RECOVERY_CHECKLIST: tuple[str, ...] = (
    "A rollback restores the database saved by the last upgrade: data changed since is lost.",
    "Only the last applied upgrade can be rolled back, one stand-alone cluster at a time.",
    "A restart drops calls: recovery busies clusters out and waits for calls to end (bounded).",
)

_ESTIMATE: Mapping[StepKind, str] = {
    K.RECOVERY_CHECK: "short_step_s", K.REASSIGN_TERRITORIES: "territory_step_s",
    K.BUSY_OUT: "short_step_s", K.DRAIN: "drain_estimate_s", K.OUT_OF_SERVICE: "short_step_s",
    K.REMOVE: "leave_estimate_s", K.ROLLBACK: "login_grace_s", K.WAIT_LOGIN: "login_grace_s",
    K.VERIFY: "verify_estimate_s", K.JOIN: "join_estimate_s",
    K.ASSIGN_TERRITORIES: "territory_step_s", K.RETURN_TO_SERVICE: "short_step_s",
    K.CHECK_TERRITORIES: "territory_step_s", K.SERVICE_CHECK: "verify_estimate_s",
}


def encode_assignments(assign: Mapping[str, Assignment]) -> tuple[str, ...]:
    """Territory assignments as step parameters: "id|primary|backup" (empty for none)."""
    return tuple(f"{tid}|{p or ''}|{b or ''}" for tid, (p, b) in sorted(assign.items()))


def decode_assignments(values: Sequence[str]) -> dict[str, Assignment]:
    """The assignments that `encode_assignments` wrote."""
    out: dict[str, Assignment] = {}
    for value in values:
        tid, primary, backup = [*value.split("|"), "", ""][:3]
        out[tid] = (primary or None, backup or None)
    return out


@dataclass
class _Steps:
    timing: PlanTiming
    steps: list[StepSpec] = field(default_factory=list)

    def add(self, kind: StepKind, cluster: str | None, deps: Sequence[str], title: str,
            **params: str | tuple[str, ...]) -> str:
        key = kind.value if cluster is None else f"{kind.value}:{cluster}"
        self.steps.append(StepSpec(key=key, kind=kind, cluster=cluster, deps=tuple(deps),
                                   estimate_s=float(getattr(self.timing, _ESTIMATE[kind])),
                                   title=title, params=tuple(params.items())))
        return key


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _plan(strategy: Strategy, *, target: str, kind: str, version: str, now: Sequence[ClusterNow],
          order: Sequence[str], seed: str | None, steps: _Steps, reasons: Sequence[str],
          digest_of: object) -> Plan:
    total, _ = schedule_estimate(steps.steps, max_parallel=parallel_limits(steps.timing))
    return Plan(
        target=target, target_kind="cluster" if kind == "cluster" else "supercluster",
        to_version=version,
        from_versions=tuple((c.name, c.version or "?") for c in now if c.name in order),
        strategy=strategy, requested=strategy, reasons=tuple(reasons), order=tuple(order),
        seed=seed, steps=tuple(steps.steps),
        cluster_estimates=tuple((c, sum(s.estimate_s for s in steps.steps if s.cluster == c))
                                for c in order),
        total_estimate_s=total, outage_estimate_s=None, needs_window=False, factors=(),
        checklist=RECOVERY_CHECKLIST, digest=_digest(digest_of))


# -- rollback of one cluster ---------------------------------------------------------------


def plan_rollback(recovered: Recovered, cluster: str, now: Sequence[ClusterNow],
                  live_territories: Sequence[TerritoryFacts], timing: PlanTiming) -> Plan:
    """Plan the vendor's rollback of one cluster of a run, from where it is now."""
    facts = {c.name: c for c in now}
    c = _rollback_candidate(recovered, cluster, facts)
    rb = c.rollback_version or ""
    record = recovered.record or tuple(live_territories)
    s = _Steps(timing)
    reasons = [f"Rolls {cluster} back from {c.version} to {rb}, the version before its last "
               f"upgrade (recovers {recovered.name}). A rollback restores the database saved "
               "by that upgrade."]
    after = s.add(K.RECOVERY_CHECK, None, (), f"Re-read {cluster}: still on {c.version} with "
                  f"{rb} to roll back to", expect=(f"{cluster}={c.version}",),
                  rollback=(f"{cluster}={rb}",))
    others = [m for m in (*recovered.clusters, *c.members) if m in c.members and m != cluster]
    others = list(dict.fromkeys(others))
    if others:
        reasons.append(f"{cluster} is a member of a supercluster with {', '.join(others)}: it "
                       "leaves it the vendor's way first (territories reassigned and confirmed "
                       f"via {others[0]}, busied out and drained, out of service, removed).")
        after = s.add(K.REASSIGN_TERRITORIES, cluster, (after,),
                      f"Reassign {cluster}'s territories to {', '.join(others)} (confirmed via "
                      f"{others[0]})", away_from=cluster, stay=tuple(others))
        after = _quiesce(s, c, after, busy=True)
        after = s.add(K.REMOVE, cluster, (after,),
                      f"Remove {cluster} from the supercluster (via {others[0]})", via=others[0])
    else:
        after = _quiesce(s, c, after, busy=c.service == "IN_SERVICE")
    after = s.add(K.ROLLBACK, cluster, (after,), f"Roll {cluster} back to {rb} (it restarts, "
                  "about five minutes)", version=rb)
    after = s.add(K.WAIT_LOGIN, cluster, (after,),
                  f"Wait for {cluster} to restart, then log back in", applied_by="rollback")
    after = s.add(K.VERIFY, cluster, (after,), f"Verify {cluster} on {rb}: servers up, package "
                  "versions, private link, history", version=rb, servers=str(c.servers))
    join_to = _rejoin_target(recovered, c, rb, facts, others)
    order = [cluster]
    if join_to is None:
        reasons.append(f"No healthy cluster runs a version compatible with {rb} now, or "
                       f"{recovered.name} had no supercluster on it: {cluster} stays "
                       "stand-alone and returns to service; `restore` or a new plan brings it "
                       "back into a supercluster.")
        s.add(K.RETURN_TO_SERVICE, cluster, (after,), f"Return {cluster} to service")
    else:
        order.append(join_to)
        back = _territories_back(record, cluster, {*facts[join_to].members, join_to, cluster})
        reasons.append(f"Then {cluster} joins {join_to} (the rolled-back cluster joins the "
                       f"other, never the reverse), its territories go back to the recorded "
                       f"plan ({', '.join(sorted(back)) or 'none of its own'}), and it returns "
                       "to service.")
        after = s.add(K.JOIN, cluster, (after,), f"Join {cluster} to {join_to}'s supercluster",
                      seed=join_to, version=rb)
        after = s.add(K.ASSIGN_TERRITORIES, cluster, (after,), f"Give {cluster}'s territories "
                      f"back as recorded (via {join_to})", via=join_to,
                      assign=encode_assignments(back))
        after = s.add(K.RETURN_TO_SERVICE, cluster, (after,), f"Return {cluster} to service")
        s.add(K.CHECK_TERRITORIES, cluster, (after,),
              f"Check that {cluster}'s territories are back on their primary")
    return _plan(Strategy.ROLLBACK, target=cluster, kind="cluster", version=rb, now=now,
                 order=order, seed=join_to, steps=s, reasons=reasons,
                 digest_of=["rollback", recovered.name, cluster, [asdict(x) for x in now]])


def _rollback_candidate(recovered: Recovered, cluster: str,
                        facts: Mapping[str, ClusterNow]) -> ClusterNow:
    if cluster not in recovered.clusters:
        raise RecoveryError(f"{cluster} is not a cluster of {recovered.name} (its clusters: "
                            f"{', '.join(recovered.clusters)})")
    c = facts[cluster]
    if not c.reachable:
        raise RecoveryError(f"{cluster} does not answer ({c.why_not_healthy}): a rollback is "
                            "started on a cluster that answers; wait for it, or call Polycom "
                            "Global Services")
    if c.rollback_version is None:
        raise RecoveryError(f"{cluster} reports no rollback version: only the last applied "
                            f"upgrade can be rolled back, and {cluster} (on {c.version}) has "
                            "none to undo (a rollback is undone by upgrading again).")
    return c


def _quiesce(s: _Steps, c: ClusterNow, after: str, *, busy: bool) -> str:
    """Busy out and drain (when it serves), then take the cluster out of service."""
    if busy:
        after = s.add(K.BUSY_OUT, c.name, (after,), f"Busy out {c.name} (running calls go on)")
        after = s.add(K.DRAIN, c.name, (after,), f"Wait for the calls on {c.name} to end")
    return s.add(K.OUT_OF_SERVICE, c.name, (after,), f"Take {c.name} out of service")


def _rejoin_target(recovered: Recovered, c: ClusterNow, rb: str,
                   facts: Mapping[str, ClusterNow], others: Sequence[str]) -> str | None:
    """The cluster the rolled-back one joins, when the run had a supercluster of that version."""
    had = recovered.target_kind == "supercluster" and any(
        family(v) == family(rb) for _, v in recovered.from_versions)
    if not had:
        return None
    fits = [n for n in recovered.clusters if n != c.name and n in facts and facts[n].healthy
            and family(facts[n].version) == family(rb)]
    for choice in (*others, recovered.cluster_a, *fits):
        if choice in fits:
            return choice
    return None


def _territories_back(record: Sequence[TerritoryFacts], cluster: str,
                      members: set[str]) -> dict[str, Assignment]:
    """The recorded assignments of the territories the cluster served, within `members`.

    Only territories whose recorded primary is a member come back: one whose primary is in
    another supercluster is served there, and taking it here would split it in two.
    """
    back: dict[str, Assignment] = {}
    for t in record:
        if cluster in (t.primary, t.backup) and t.primary in members:
            back[t.territory_id] = (t.primary, t.backup if t.backup in members else None)
    return back


# -- restore of a served network -----------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """The clusters of one version family that form one supercluster, around a seed."""

    version: str
    seed: str
    joiners: tuple[str, ...]
    members: tuple[str, ...]  # every healthy cluster of the family


def plan_restore(recovered: Recovered, now: Sequence[ClusterNow], timing: PlanTiming) -> Plan:
    """Plan the way back to a served network from the clusters as they are."""
    facts = {c.name: c for c in now}
    healthy = [n for n in recovered.clusters if n in facts and facts[n].healthy]
    failed = [n for n in recovered.clusters if n not in healthy]
    if not healthy:
        raise RecoveryError(f"no cluster of {recovered.name} is healthy now ("
                            + "; ".join(f"{n}: {facts[n].why_not_healthy}" for n in failed)
                            + "): call Polycom Global Services, or roll a cluster back")
    families = _families(recovered, healthy, facts)
    assign, gaps = _restored_territories(recovered.record, families, set(healthy))
    s = _Steps(timing)
    check = s.add(K.RECOVERY_CHECK, None, (), "Re-read every healthy cluster: versions as "
                  "planned", expect=tuple(f"{n}={facts[n].version}" for n in healthy))
    reasons = _restore_reasons(recovered, families, failed, facts, gaps)
    for fam in families:
        after = check
        for name in fam.joiners:
            after = s.add(K.JOIN, name, (after,), f"Join {name} to {fam.seed}'s supercluster "
                          f"({fam.version})", seed=fam.seed, version=facts[name].version or "")
        mine = {tid: a for tid, a in assign.items() if a[0] in fam.members}
        others = {t.territory_id: (None, None) for t in recovered.record
                  if t.territory_id not in mine and t.territory_id not in gaps}
        after = s.add(K.ASSIGN_TERRITORIES, fam.seed, (after,),
                      f"Restore the recorded territories on {fam.seed}'s supercluster "
                      f"({len(mine)} served there)", via=fam.seed,
                      assign=encode_assignments({**others, **mine}))
        back = tuple(s.add(K.RETURN_TO_SERVICE, n, (after,), f"Return {n} to service")
                     for n in fam.members)
        s.add(K.SERVICE_CHECK, None if len(families) == 1 else fam.seed, back,
              f"Check {fam.seed}'s supercluster: {', '.join(fam.members)} in service, "
              "territories as planned", via=fam.seed, members=fam.members,
              assign=encode_assignments(mine))
    version = families[0].version
    return _plan(Strategy.RESTORE, target=recovered.target, kind=recovered.target_kind,
                 version=version, now=now, order=[n for n in recovered.clusters if n in healthy],
                 seed=families[0].seed, steps=s, reasons=reasons,
                 digest_of=["restore", recovered.name, [asdict(x) for x in now]])


def _families(recovered: Recovered, healthy: Sequence[str],
              facts: Mapping[str, ClusterNow]) -> list[Family]:
    """One family per MAJOR.MINOR, cluster A's first; each seeded and joined to its seed."""
    groups: dict[str, list[str]] = {}
    for name in healthy:
        groups.setdefault(family(facts[name].version), []).append(name)
    primaries = [t.primary for t in recovered.record]
    out = []
    for names in groups.values():
        # Cluster A seeds its family; elsewhere the primary of most territories. A rolled-back
        # stand-alone cluster never seeds: another cluster may not join its old data.
        ranked = sorted(names, key=lambda n: (n != recovered.cluster_a, facts[n].rolled_back,
                                              -primaries.count(n), healthy.index(n)))
        seed = ranked[0]
        together = set(facts[seed].members) | {seed}
        joiners = tuple(n for n in names if n not in together and facts[n].standalone)
        out.append(Family(facts[seed].version or "?", seed, joiners, tuple(names)))
    out.sort(key=lambda f: recovered.cluster_a not in f.members)
    return out


def _restored_territories(record: Sequence[TerritoryFacts], families: Sequence[Family],
                          serving: set[str]) -> tuple[dict[str, Assignment], dict[str, str]]:
    """The recorded plan as far as the clusters in service allow; the gaps, by id, named."""
    fam_of = {n: f.seed for f in families for n in f.members}
    assign: dict[str, Assignment] = {}
    gaps: dict[str, str] = {}
    for t in record:
        primary = next((x for x in (t.primary, t.backup) if x in serving), None)
        if primary is None:
            gaps[t.territory_id] = (f"{t.name or t.territory_id} (primary {t.primary or 'none'}, "
                                    f"backup {t.backup or 'none'})")
            continue
        backup = (t.backup if t.backup in serving and t.backup != primary
                  and fam_of.get(t.backup) == fam_of[primary] else None)
        assign[t.territory_id] = (primary, backup)
    return assign, gaps


def _restore_reasons(recovered: Recovered, families: Sequence[Family], failed: Sequence[str],
                     facts: Mapping[str, ClusterNow], gaps: Mapping[str, str]) -> list[str]:
    lines = [f"Restores service after {recovered.name}: every healthy cluster returns to "
             "service, one supercluster per version family."]
    for fam in families:
        role = "cluster A" if fam.seed == recovered.cluster_a else "primary of most territories"
        joined = (f"{', '.join(fam.joiners)} join{'s' if len(fam.joiners) == 1 else ''} it"
                  if fam.joiners else "no cluster needs to join")
        lines.append(f"{family(fam.version)} family ({', '.join(fam.members)}): {fam.seed} "
                     f"({role}) seeds the supercluster; {joined}.")
    for name in failed:
        offer = (f"; `/upgrade rollback {recovered.name} {name}` rolls it back to "
                 f"{facts[name].rollback_version}" if facts[name].rollback_version else "")
        lines.append(f"{name} stays out of service: {facts[name].why_not_healthy}{offer}.")
    lines.append("Territories with no cluster in service after this plan: "
                 + ("; ".join(gaps.values()) if gaps else "none") + ".")
    return lines
