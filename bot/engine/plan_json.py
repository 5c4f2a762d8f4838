"""Plans as stored JSON (with a schema number) and back, exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.engine.plans import Plan, PlanningError, PreCheck, StepKind, StepSpec, Strategy

SCHEMA = 1


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """Render a plan as plain JSON data (lists, not tuples), tagged with its schema."""
    return {
        "schema": SCHEMA, "target": plan.target, "target_kind": plan.target_kind,
        "to_version": plan.to_version, "from_versions": [list(p) for p in plan.from_versions],
        "strategy": plan.strategy.value, "requested": plan.requested.value,
        "reasons": list(plan.reasons), "order": list(plan.order), "seed": plan.seed,
        "steps": [_step_to_json(s) for s in plan.steps],
        "cluster_estimates": [list(p) for p in plan.cluster_estimates],
        "total_estimate_s": plan.total_estimate_s, "outage_estimate_s": plan.outage_estimate_s,
        "needs_window": plan.needs_window, "factors": list(plan.factors),
        "checklist": list(plan.checklist), "digest": plan.digest,
        "emergency": plan.emergency, "acknowledge": list(plan.acknowledge),
        "prechecks": [[c.cluster, c.check, c.ok, c.detail, c.fact] for c in plan.prechecks],
    }


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """Read a stored plan; refuse another schema or a damaged record with a clear message."""
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise PlanningError(f"stored plan has schema {found!r}; this bot reads schema {SCHEMA}")
    try:
        outage = data["outage_estimate_s"]
        return Plan(
            target=str(data["target"]), target_kind=data["target_kind"],
            to_version=str(data["to_version"]),
            from_versions=tuple((str(c), str(v)) for c, v in data["from_versions"]),
            strategy=Strategy(data["strategy"]), requested=Strategy(data["requested"]),
            reasons=tuple(data["reasons"]), order=tuple(data["order"]), seed=data["seed"],
            steps=tuple(_step_from_json(s) for s in data["steps"]),
            cluster_estimates=tuple((str(c), float(s)) for c, s in data["cluster_estimates"]),
            total_estimate_s=float(data["total_estimate_s"]),
            outage_estimate_s=None if outage is None else float(outage),
            needs_window=bool(data["needs_window"]), factors=tuple(data["factors"]),
            checklist=tuple(data["checklist"]), digest=str(data["digest"]),
            # Optional: plans stored before the validation gate and the acknowledgements.
            emergency=bool(data.get("emergency", False)),
            acknowledge=tuple(str(i) for i in data.get("acknowledge", ())),
            prechecks=tuple(PreCheck(str(c), str(k), bool(ok), str(d), str(f))
                            for c, k, ok, d, f in data.get("prechecks", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanningError(f"stored plan is damaged ({type(exc).__name__}: {exc}); "
                            "make a new plan") from exc


def _step_to_json(step: StepSpec) -> dict[str, Any]:
    return {"key": step.key, "kind": step.kind.value, "cluster": step.cluster,
            "deps": list(step.deps), "estimate_s": step.estimate_s, "title": step.title,
            "params": [[name, list(value) if isinstance(value, tuple) else value]
                       for name, value in step.params],
            "safe_point": step.safe_point}


def _step_from_json(data: Mapping[str, Any]) -> StepSpec:
    return StepSpec(
        key=str(data["key"]), kind=StepKind(data["kind"]), cluster=data["cluster"],
        deps=tuple(data["deps"]), estimate_s=float(data["estimate_s"]), title=str(data["title"]),
        params=tuple((str(name), tuple(value) if isinstance(value, list) else str(value))
                     for name, value in data["params"]),
        safe_point=bool(data["safe_point"]))
