"""The plan message posted for approval (its words; the layout is in `layouts`)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.engine.durations import say_duration
from bot.engine.planner import Plan, Strategy
from bot.engine.plans import RECOVERY
from bot.engine.states import APPROVABLE, RunStatus
from bot.messages import layouts
from bot.messages.common import Payload, mention

STRATEGY_TITLE = {
    Strategy.BASIC: "basic (cluster by cluster)",
    Strategy.FULL_OUTAGE: "system-wide maintenance window (complete service outage)",
    Strategy.INCREMENTAL: "incremental (some service maintained)",
    Strategy.ROLLBACK: "rollback of one cluster (the guide's rollback procedure)",
    Strategy.RESTORE: "restore service (superclusters re-formed per version family)",
}


def plan_message(run_name: str, plan: Plan, *, window: str | None, approvals_required: int,
                 approvers: Sequence[str], approve_reaction: str, reject_reaction: str,
                 requester: str, approvals: Sequence[str] = (),
                 status: RunStatus | None = None, recovers: str | None = None) -> Payload:
    """The plan as posted to the channel for approval (a recovery plan names what it recovers)."""
    froms = sorted({v for _, v in plan.from_versions})
    kind = plan.strategy.value if plan.strategy in RECOVERY else "upgrade"
    head = (f"*{run_name}* — {kind} plan for {plan.target_kind} *{plan.target}*: "
            f"{', '.join(froms)} → *{plan.to_version}*"
            + (f" (recovers {recovers})" if recovers else ""))
    strategy = STRATEGY_TITLE.get(plan.strategy, plan.strategy.value)
    estimates = dict(plan.cluster_estimates)
    seeds = {Strategy.ROLLBACK: "the rolled-back cluster joins it",
             Strategy.RESTORE: "cluster A or primary of most territories, seeds its family"}
    seeded = seeds.get(plan.strategy, "cluster A, seeds the new supercluster")
    order = [f"{name} ({seeded})" if name == plan.seed
             and plan.strategy != Strategy.BASIC else name for name in plan.order]
    total = (f"about {say_duration(plan.total_estimate_s)}"
             + (f"; full outage about {say_duration(plan.outage_estimate_s)}"
                if plan.outage_estimate_s else ""))
    window_text = window or ("none given — this plan needs a maintenance window"
                             if plan.needs_window else "none — starts as soon as it is approved")
    who = ", ".join(mention(a) for a in approvers) or "the configured approvers"
    approval_help = (f"the requester {mention(requester)} does not count. React with "
                     f":{approve_reaction}: to approve or :{reject_reaction}: to reject.")
    approved_by = ("Approved by: " + ", ".join(mention(a) for a in approvals)) if approvals else ""
    lines = [
        head, f"Strategy: {strategy}", *(f"  • {reason}" for reason in plan.reasons),
        "Order: " + ", ".join(order),
        "Estimates: " + ", ".join(f"{c} {say_duration(s)}" for c, s in plan.cluster_estimates)
        + f"; in all {total}",
        f"Window: {window_text}", "Pre-flight checklist:",
        *(f"  ☐ {item}" for item in plan.checklist),
    ]
    if plan.factors:
        lines.append("Factors to consider before an incremental upgrade (all ten, guide):")
        lines.extend(f"  {i}. {factor}" for i, factor in enumerate(plan.factors, 1))
    lines.append(f"Approvals: {len(approvals)} of {approvals_required} from {who} "
                 f"(the requester {mention(requester)} does not count). React with "
                 f":{approve_reaction}: to approve or :{reject_reaction}: to reject.")
    if approved_by:
        lines.append(approved_by)
    if status is not None:
        lines.append(f"Status: {status.words}")
    layout = layouts.PlanLayout(
        run_name=run_name, title=f"{run_name} — {kind} {plan.target} to {plan.to_version}",
        head=head, versions=f"{', '.join(froms)} → {plan.to_version}", strategy=strategy,
        reasons=plan.reasons,
        order=[f"{label} — {say_duration(estimates.get(name, 0.0))}"
               for name, label in zip(plan.order, order, strict=True)],
        estimate=total, window=window_text, checklist=plan.checklist, factors=plan.factors,
        approvals=f"{len(approvals)} of {approvals_required} from {who}",
        approval_help=approval_help[0].upper() + approval_help[1:], approved_by=approved_by,
        status=status.words if status else "",
        approvable=status is None or status in APPROVABLE)
    return {"text": "\n".join(lines), "blocks": layouts.plan_blocks(layout)}
