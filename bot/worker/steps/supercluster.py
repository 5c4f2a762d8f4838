"""Supercluster-wide steps: pre-flight, join, and the final check."""

from __future__ import annotations

from typing import Any

from bot.dma.errors import DmaNotFound, DmaNotReachable
from bot.dma.models import OperationStatus
from bot.engine.gate import drift, evaluate, failures, gate_digest
from bot.engine.verification import (
    CONDITION_TEXT,
    Condition,
    SuperclusterReport,
    verify_join,
    verify_supercluster,
)
from bot.runs.gate import read_gate
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext


def preflight(ctx: StepContext) -> Outcome:
    """The validation gate at the start: re-read every cluster, judge, and compare with the plan."""
    problems: list[str] = []
    expected = dict(ctx.plan.from_versions)  # every cluster of the target, upgraded or not
    # Not answering is not a mismatch: the worker waits for it (bounded) and looks again.
    reading = read_gate(ctx.client, ctx.plan.target,
                        [(name, ctx.servers(name)) for name in expected],
                        to_version=ctx.to_version, expected_members=_planned_members(ctx))
    for c in reading.clusters:
        if c.version not in (expected.get(c.name), ctx.to_version):
            problems.append(f"{c.name} runs {c.version}, the plan says {expected.get(c.name)}")
    rows = evaluate(reading)
    problems += failures(rows)
    drifted = drift(ctx.plan.prechecks, rows) if ctx.plan.prechecks else []
    if problems or drifted:
        text = "the clusters no longer match the plan: " + "; ".join(problems + drifted)
        if drifted:
            text += (". What the approvers saw has changed, so a new approval is needed "
                     f"(`/upgrade abort {ctx.run_name}`, then plan again)")
        return Outcome.fail(text, data={"problems": problems, "drift": drifted,
                                        "digest": gate_digest(rows)})
    return Outcome.done(f"{len(expected)} clusters match the plan; validation gate passed "
                        f"({len(rows)} checks)", data={"digest": gate_digest(rows)})


def _planned_members(ctx: StepContext) -> list[str] | None:
    """The supercluster's members the approvers saw (None: a stand-alone target)."""
    row = next((r for r in ctx.plan.prechecks if r.check == "membership"), None)
    if row is not None:
        return [m for m in row.fact.split(", ") if m]
    if ctx.plan.target_kind == "supercluster":
        return [name for name, _ in ctx.plan.from_versions]
    return None


def _seed_address(ctx: StepContext, seed: str) -> tuple[str, int]:
    """The seed's host name as it reports itself, and the management port of the inventory."""
    spec = ctx.inventory[seed]
    member = ctx.client(seed).supercluster().member(seed)
    host = member.host_name if member and member.host_name else (spec.fqdn or seed)
    return host, spec.port or 443


def join(ctx: StepContext) -> Outcome:
    """Join this cluster to the seed (never the seed to it) and check the join."""
    name, seed = ctx.cluster or "", ctx.params["seed"]
    member = ctx.client(seed).supercluster().member(name)
    if member is not None and member.status == "SUPERCLUSTERED":
        return _check_join(ctx, name, seed)
    if member is None and ctx.phase not in ("requesting", "requested"):
        # Commit the intent first: after a crash or a lost answer we ask the cluster, not resend.
        return Outcome.checkpoint("requesting", f"joining {name} to {seed}")
    if member is None and ctx.phase == "requesting" and not _join_under_way(ctx):
        host, port = _seed_address(ctx, seed)
        # A restore joins each version family at its own version, not the run's.
        version = str(ctx.params.get("version") or ctx.to_version)
        ctx.client().join_supercluster(fqdn=host, port=port, version=version)
        return Outcome.wait(ctx.poll_s, f"joining {name} to {seed} ({host})", phase="requested",
                            data={"requested_at": ctx.stamp()})
    return _watch_join(ctx, name, seed)


def _join_under_way(ctx: StepContext) -> bool:
    """True when the cluster reports a join already started (our request got through).

    A cluster that does not answer raises DmaNotReachable: the worker waits and asks again,
    because silence may be a flaky network as well as the restart of a join.
    """
    try:
        op = ctx.client().operation_status()
    except DmaNotFound:
        return False
    return op.operation_type == "JOIN" and op.state in ("IN_PROGRESS", "COMPLETE")


def _check_join(ctx: StepContext, name: str, seed: str) -> Outcome:
    """A listed member is not enough: the operation must say COMPLETE and nothing be warned."""
    try:
        op: OperationStatus | None = ctx.client().operation_status()
    except (DmaNotReachable, DmaNotFound):
        op = None  # its services are still starting (401) after the join's restart
    view = ctx.client(seed).supercluster()
    verdict = verify_join(cluster=name, seed=seed, members=view.ids, view=view, operation=op)
    if verdict.ok:
        return Outcome.done(f"{name} joined {seed}'s supercluster: operation COMPLETE, no "
                            "warnings", data={"members": sorted(view.ids),
                                              "operation": op.state if op else None,
                                              "warnings": list(view.warnings)})
    failed = op is not None and op.state == "FAILED"
    limit = ctx.timing.escalate_after * ctx.seconds(
        ctx.timing.join_estimate + ctx.timing.login_grace)
    if not failed and ctx.elapsed_s() <= limit:
        return Outcome.wait(ctx.poll_s, f"{name} is listed in {seed}'s supercluster; "
                            f"waiting for the join to settle ({verdict.summary})")
    details: dict[str, Any] = {
        "seed": seed, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail}
                                 for c in verdict.checks],
        "waited_min": round(ctx.elapsed_s() / 60, 1),
        "done": ["upgraded and verified", "join requested"]}
    return Outcome.escalate(Condition.JOIN_FAILED.value, verdict.summary, details)


def _watch_join(ctx: StepContext, name: str, seed: str) -> Outcome:
    try:
        op = ctx.poll().operation_status()
    except (DmaNotReachable, DmaNotFound):
        op = None
    limit = ctx.timing.escalate_after * ctx.seconds(
        ctx.timing.join_estimate + ctx.timing.login_grace)
    if (op is not None and op.state == "FAILED") or ctx.elapsed_s() > limit:
        details: dict[str, Any] = {
            "seed": seed, "operation": op.message if op else "no answer",
            "waited_min": round(ctx.elapsed_s() / 60, 1),
            "done": ["left the old supercluster", "upgraded and verified", "join requested"]}
        return Outcome.escalate(Condition.JOIN_FAILED.value,
                                CONDITION_TEXT[Condition.JOIN_FAILED], details)
    pct = f"{op.percentage_complete}%" if op else "restarting"
    return Outcome.wait(ctx.poll_s, f"{name} joining {seed}: {pct}", phase="requested")


def final_check(ctx: StepContext) -> Outcome:
    """The supercluster shows every cluster and server, no warnings, territories on primary."""
    via = ctx.plan.seed or ctx.plan.order[0]
    expected = {name: ctx.servers(name) for name, _ in ctx.plan.from_versions}
    view = ctx.client(via).supercluster()
    territories = ctx.client(via).territories()
    ha = {name: ctx.client(name).ha_status() for name in expected}
    verdict = verify_supercluster(expected=expected, target_version=ctx.to_version, view=view,
                                  territories=territories, ha=ha)
    report = SuperclusterReport(ctx.plan.target, verdict, tuple(sorted(view.ids)),
                                tuple(view.warnings))
    result = report.to_json()
    if verdict.ok:
        return Outcome.done(f"{ctx.plan.target}: {verdict.summary}", data=result,
                            reports=(report,))
    if ctx.elapsed_s() < ctx.seconds(ctx.timing.login_grace):
        return Outcome.wait(ctx.poll_s, f"final check not clean yet: {verdict.summary}")
    return Outcome.escalate(Condition.SUPERCLUSTER_CHECK.value, verdict.summary,
                            {**result, "done": ["every cluster upgraded and joined"]},
                            reports=(report,))
