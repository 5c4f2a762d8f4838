"""Supercluster-wide steps: pre-flight, join, and the final check."""

from __future__ import annotations

from typing import Any

from bot.dma.errors import DmaNotFound, DmaNotReachable
from bot.engine.verification import (
    CONDITION_TEXT,
    Condition,
    SuperclusterReport,
    verify_supercluster,
)
from bot.runs.outcome import Outcome
from bot.worker.context import StepContext


def preflight(ctx: StepContext) -> Outcome:
    """Re-read every cluster; refuse to start when they no longer match the plan."""
    problems: list[str] = []
    expected = dict(ctx.plan.from_versions)  # every cluster of the target, upgraded or not
    for name in expected:
        # Not answering is not a mismatch: the worker waits for it (bounded) and looks again.
        sw = ctx.client(name).installed_software()
        ha = ctx.client(name).ha_status()
        if sw.system_version not in (expected.get(name), ctx.to_version):
            problems.append(f"{name} runs {sw.system_version}, the plan says "
                            f"{expected.get(name)}")
        up = sum(1 for n in ha.nodes if n.state == "UP")
        if up < ctx.servers(name):
            problems.append(f"{name} has {up} of {ctx.servers(name)} servers up")
    if ctx.plan.target_kind == "supercluster" and not problems:
        members = ctx.client(ctx.plan.order[0]).supercluster().ids
        if members != set(expected):
            problems.append(f"the supercluster lists {', '.join(sorted(members))}, the plan "
                            f"has {', '.join(sorted(expected))}")
    if problems:
        return Outcome.fail("the clusters no longer match the plan: " + "; ".join(problems),
                            data={"problems": problems})
    return Outcome.done(f"{len(expected)} clusters match the plan")


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
        return Outcome.done(f"{name} joined {seed}'s supercluster",
                            data={"members": sorted(ctx.client(seed).supercluster().ids)})
    if member is None and ctx.phase not in ("requesting", "requested"):
        # Commit the intent first: after a crash or a lost answer we ask the cluster, not resend.
        return Outcome.checkpoint("requesting", f"joining {name} to {seed}")
    if member is None and ctx.phase == "requesting" and not _join_under_way(ctx):
        host, port = _seed_address(ctx, seed)
        # A restore joins each version family at its own version, not the run's.
        version = str(ctx.params.get("version") or ctx.to_version)
        ctx.client().join_supercluster(fqdn=host, port=port, version=version)
        return Outcome.wait(ctx.poll_s, f"joining {name} to {seed} ({host})", phase="requested",
                            data={"requested_at": ctx.stamp()}, board_state="joining")
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


def _watch_join(ctx: StepContext, name: str, seed: str) -> Outcome:
    try:
        op = ctx.client().operation_status()
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
    return Outcome.wait(ctx.poll_s, f"{name} joining {seed}: {pct}", phase="requested",
                        board_state="joining")


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
