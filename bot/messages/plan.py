"""The plan message posted for approval (its words; the layout is in `layouts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.engine.durations import say_duration
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.planner import Plan, Strategy
from bot.engine.plans import RECOVERY
from bot.engine.states import APPROVABLE, WAITING_RUN, RunStatus
from bot.messages import layouts
from bot.messages.common import Payload, mention

STRATEGY_TITLE = {
    Strategy.BASIC: "basic (cluster by cluster)",
    Strategy.FULL_OUTAGE: "system-wide maintenance window (complete service outage)",
    Strategy.INCREMENTAL: "incremental (some service maintained)",
    Strategy.ROLLBACK: "rollback of one cluster (the guide's rollback procedure)",
    Strategy.RESTORE: "restore service (superclusters re-formed per version family)",
}


def precheck_table(plan: Plan) -> list[str]:
    """The validation gate's rows, one line per cluster (✅ all pass, ❌ a failure)."""
    lines = []
    for cluster in dict.fromkeys(r.cluster for r in plan.prechecks):
        rows = [r for r in plan.prechecks if r.cluster == cluster]
        icon = "✅" if all(r.ok for r in rows) else "❌"
        cells = "; ".join(("" if r.ok else "✗ ") + f"{r.check}: {r.detail}" for r in rows)
        lines.append(f"{icon} {cluster} — {cells}")
    if any(not r.ok for r in plan.prechecks):
        lines.append("A failed check stops the start; fix it before the window.")
    return lines


def checklist_lines(plan: Plan, acknowledged: Mapping[str, str]) -> list[str]:
    """The checklist: items to acknowledge say by whom and when, or that they still wait."""
    keys = {text: key for key, text in CHECKLIST_ACKS.items() if key in plan.acknowledge}
    lines = []
    for item in plan.checklist:
        key = keys.get(item)
        if key is None:
            lines.append(f"☐ {item}")
        elif key in acknowledged:
            lines.append(f"☑ {item} — acknowledged {acknowledged[key]}")
        else:
            lines.append(f"☐ {item} — *needs an operator's acknowledgement before the start*")
    return lines


def plan_message(run_name: str, plan: Plan, *, window: str | None, approvals_required: int,
                 approvers: Sequence[str], approve_reaction: str, reject_reaction: str,
                 requester: str, approvals: Sequence[str] = (),
                 status: RunStatus | None = None, recovers: str | None = None,
                 acknowledged: Mapping[str, str] | None = None) -> Payload:
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
    gate = precheck_table(plan)
    acknowledged = acknowledged or {}
    checklist = checklist_lines(plan, acknowledged)
    waiting = status is None or status in WAITING_RUN
    ack_buttons = [f"ack:{k}" for k in plan.acknowledge if k not in acknowledged] if waiting else []
    emergency = ("*EMERGENCY: installs may start with calls still up (the plan was made with "
                 "`emergency`; the guide allows it only in an emergency)*" if plan.emergency
                 else "")
    lines = [
        head, *([emergency] if emergency else []), f"Strategy: {strategy}",
        *(f"  • {reason}" for reason in plan.reasons),
        "Order: " + ", ".join(order),
        "Estimates: " + ", ".join(f"{c} {say_duration(s)}" for c, s in plan.cluster_estimates)
        + f"; in all {total}",
        f"Window: {window_text}",
        *(["Pre-checks (validation gate, read now and again at the start):"]
          + [f"  {row}" for row in gate] if gate else []),
        "Pre-flight checklist:",
        *(f"  {item}" for item in checklist),
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
        head=head + (f"\n{emergency}" if emergency else ""),
        versions=f"{', '.join(froms)} → {plan.to_version}", strategy=strategy,
        reasons=plan.reasons,
        order=[f"{label} — {say_duration(estimates.get(name, 0.0))}"
               for name, label in zip(plan.order, order, strict=True)],
        estimate=total, window=window_text, checklist=checklist, factors=plan.factors,
        prechecks=gate, acknowledge=ack_buttons,
        approvals=f"{len(approvals)} of {approvals_required} from {who}",
        approval_help=approval_help[0].upper() + approval_help[1:], approved_by=approved_by,
        status=status.words if status else "",
        approvable=status is None or status in APPROVABLE)
    return {"text": "\n".join(lines), "blocks": layouts.plan_blocks(layout)}
