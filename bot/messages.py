"""The messages the bot posts, built in one place; each has a plain-text fallback (`text`).

These builders are pure: they take values, not sessions or clients. The Slack layer adds Block
Kit from the same values; the rehearsal prints `text`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.engine.planner import Plan, Strategy
from bot.engine.verification import VENDOR_CONDITIONS, Condition

Payload = dict[str, Any]

STRATEGY_TITLE = {
    Strategy.BASIC: "basic (cluster by cluster)",
    Strategy.FULL_OUTAGE: "system-wide maintenance window (complete service outage)",
    Strategy.INCREMENTAL: "incremental (some service maintained)",
}


def fmt_duration(seconds: float) -> str:
    """Say a duration the way people do: '1 h 35 min', '35 min', '40 s'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def mention(slack_id: str) -> str:
    """Render a user or user-group id as a Slack mention."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def plan_message(run_name: str, plan: Plan, *, window: str | None, approvals_required: int,
                 approvers: Sequence[str], approve_reaction: str, reject_reaction: str,
                 requester: str, approvals: Sequence[str] = (), status: str = "") -> Payload:
    """The plan as posted to the channel for approval."""
    froms = sorted({v for _, v in plan.from_versions})
    lines = [
        f"*{run_name}* — upgrade plan for {plan.target_kind} *{plan.target}*: "
        f"{', '.join(froms)} → *{plan.to_version}*",
        f"Strategy: {STRATEGY_TITLE.get(plan.strategy, plan.strategy.value)}",
        *(f"  • {reason}" for reason in plan.reasons),
        "Order: " + ", ".join(
            f"{name} (cluster A, seeds the new supercluster)" if name == plan.seed
            and plan.strategy != Strategy.BASIC else name for name in plan.order),
        "Estimates: " + ", ".join(f"{c} {fmt_duration(s)}" for c, s in plan.cluster_estimates)
        + f"; in all about {fmt_duration(plan.total_estimate_s)}"
        + (f"; full outage about {fmt_duration(plan.outage_estimate_s)}"
           if plan.outage_estimate_s else ""),
        f"Window: {window}" if window else (
            "Window: none given — this plan needs a maintenance window" if plan.needs_window
            else "Window: none — starts as soon as it is approved"),
        "Pre-flight checklist:",
        *(f"  ☐ {item}" for item in plan.checklist),
    ]
    if plan.factors:
        lines.append("Factors to consider before an incremental upgrade (all ten, guide):")
        lines.extend(f"  {i}. {factor}" for i, factor in enumerate(plan.factors, 1))
    who = ", ".join(mention(a) for a in approvers) or "the configured approvers"
    lines.append(f"Approvals: {len(approvals)} of {approvals_required} from {who} "
                 f"(the requester {mention(requester)} does not count). React with "
                 f":{approve_reaction}: to approve or :{reject_reaction}: to reject.")
    if approvals:
        lines.append("Approved by: " + ", ".join(mention(a) for a in approvals))
    if status:
        lines.append(f"Status: {status}")
    return {"text": "\n".join(lines)}


@dataclass(frozen=True)
class ClusterLine:
    """One line of the status board."""

    cluster: str
    state: str
    elapsed_s: float
    estimate_s: float


def board_message(run_name: str, status: str, lines: Iterable[ClusterLine], *,
                  elapsed_s: float, estimate_s: float) -> Payload:
    """The status board that replaces the plan message while the run goes."""
    rows = [f"*{run_name}* — {status}: {fmt_duration(elapsed_s)} elapsed of about "
            f"{fmt_duration(estimate_s)}"]
    rows.extend(f"  • {line.cluster}: {line.state} ({fmt_duration(line.elapsed_s)} / "
                f"est. {fmt_duration(line.estimate_s)})" for line in lines)
    return {"text": "\n".join(rows)}


def _servers(servers: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"    server {s.get('node')} {s.get('host') or ''}: {s.get('state')}, package "
            f"{s.get('version') or 'unknown'}" for s in servers]


def verification_message(run_name: str, result: Mapping[str, Any]) -> Payload:
    """A thread reply with one cluster's verification result."""
    ok = result.get("ok")
    head = (f"{'✅' if ok else '❌'} {run_name} — {result.get('cluster')} "
            f"{'verified' if ok else 'failed verification'}")
    if "waited_min" in result:
        head += (f" (back after {result['waited_min']} min, estimate "
                 f"{result.get('estimate_min')} min)")
    rows = [head]
    rows.extend(f"  {'✓' if c['ok'] else '✗'} {c['name']}: {c['detail']}"
                for c in result.get("checks", []))
    rows.extend(_servers(result.get("servers", [])))
    return {"text": "\n".join(rows)}


def final_check_message(run_name: str, result: Mapping[str, Any]) -> Payload:
    """A thread reply with the supercluster's final check."""
    ok = result.get("ok")
    rows = [f"{'✅' if ok else '❌'} {run_name} — final check of {result.get('cluster')}: "
            f"members {', '.join(result.get('members', []))}"]
    rows.extend(f"  {'✓' if c['ok'] else '✗'} {c['name']}: {c['detail']}"
                for c in result.get("checks", []))
    return {"text": "\n".join(rows)}


def escalation_message(run_name: str, *, cluster: str, condition: str, note: str,
                       details: Mapping[str, Any], contact: str,
                       notify: Sequence[str]) -> Payload:
    """The prompt to call Polycom Global Services, with everything they will ask for."""
    try:
        vendor = Condition(condition) in VENDOR_CONDITIONS
    except ValueError:
        vendor = False
    rows = [
        f"🚨 {run_name} — escalation on *{cluster}*: call {contact}."
        + (f" {' '.join(mention(n) for n in notify)}" if notify else ""),
        ("Vendor condition (guide, 'Call Polycom Global Services if'): " if vendor
         else "Check failed: ") + note,
    ]
    if "estimate_min" in details or "waited_min" in details:
        rows.append(f"Times: install estimate {details.get('estimate_min', '?')} min, waited "
                    f"{details.get('waited_min', '?')} min")
    if details.get("last_answer"):
        rows.append(f"Last answer from the cluster: {details['last_answer']}")
    rows.extend(_servers(details.get("servers", [])))
    rows.extend(f"  ✗ {c['name']}: {c['detail']}" for c in details.get("checks", [])
                if not c["ok"])
    if details.get("done"):
        rows.append("Already done: " + "; ".join(details["done"]))
    rows.append(f"The run is paused; nothing else is touched. Next: `/upgrade retry {run_name}` "
                f"once it is dealt with, roll {cluster} back (only the last upgrade can be "
                f"undone, on a stand-alone cluster), or `/upgrade abort {run_name}`.")
    return {"text": "\n".join(rows)}


def notice(run_name: str, icon: str, text: str) -> Payload:
    """A one-line thread reply: paused, failed, completed, expired, overrun requests."""
    return {"text": f"{icon} {run_name} — {text}"}
