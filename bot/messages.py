"""The messages the bot posts, built in one place; each has a plain-text fallback (`text`).

These builders are pure: they take values, not sessions or clients. Each returns `text` (the
plain-text fallback, which the rehearsal prints) and `blocks` (Block Kit laid out by
`bot.slack.posts` from the same words, with the buttons people act with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.engine.planner import Plan, Strategy
from bot.engine.verification import VENDOR_CONDITIONS, Condition
from bot.slack import posts

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
    head = (f"*{run_name}* — upgrade plan for {plan.target_kind} *{plan.target}*: "
            f"{', '.join(froms)} → *{plan.to_version}*")
    strategy = STRATEGY_TITLE.get(plan.strategy, plan.strategy.value)
    estimates = dict(plan.cluster_estimates)
    order = [f"{name} (cluster A, seeds the new supercluster)" if name == plan.seed
             and plan.strategy != Strategy.BASIC else name for name in plan.order]
    total = (f"about {fmt_duration(plan.total_estimate_s)}"
             + (f"; full outage about {fmt_duration(plan.outage_estimate_s)}"
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
        "Estimates: " + ", ".join(f"{c} {fmt_duration(s)}" for c, s in plan.cluster_estimates)
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
    if status:
        lines.append(f"Status: {status}")
    layout = posts.PlanLayout(
        run_name=run_name, title=f"{run_name} — upgrade {plan.target} to {plan.to_version}",
        head=head, versions=f"{', '.join(froms)} → {plan.to_version}", strategy=strategy,
        reasons=plan.reasons,
        order=[f"{label} — {fmt_duration(estimates.get(name, 0.0))}"
               for name, label in zip(plan.order, order, strict=True)],
        estimate=total, window=window_text, checklist=plan.checklist, factors=plan.factors,
        approvals=f"{len(approvals)} of {approvals_required} from {who}",
        approval_help=approval_help[0].upper() + approval_help[1:], approved_by=approved_by,
        status=status)
    return {"text": "\n".join(lines), "blocks": posts.plan_blocks(layout)}


@dataclass(frozen=True)
class ClusterLine:
    """One line of the status board."""

    cluster: str
    state: str
    elapsed_s: float
    estimate_s: float


# How the board's first line reads, by run status (elapsed/estimate filled in).
_HEADLINE = {
    "running": "▶️ *{run}* — running: {elapsed} elapsed of about {estimate}",
    "completed": "🎉 *{run}* — completed in {elapsed} (estimate {estimate})",
    "escalated": "🚨 *{run}* — escalated: paused after {elapsed}; see the thread",
    "paused": "⏸️ *{run}* — paused after {elapsed} of about {estimate}",
    "awaiting overrun": "⏱️ *{run}* — waiting for approval to overrun its window",
    "failed": "⛔ *{run}* — stopped after {elapsed}; see the thread",
    "aborted": "⏹️ *{run}* — aborted after {elapsed}",
    "expired": "⌛ *{run}* — expired: it was not approved and started in its window; "
               "nothing was done",
    "rejected": "🛑 *{run}* — rejected; nothing was done",
}


def board_message(run_name: str, status: str, lines: Iterable[ClusterLine], *,
                  elapsed_s: float, estimate_s: float) -> Payload:
    """The status board that replaces the plan message while the run goes."""
    lines = list(lines)
    rows = [f"*{run_name}* — {status}: {fmt_duration(elapsed_s)} elapsed of about "
            f"{fmt_duration(estimate_s)}"]
    rows.extend(f"  • {line.cluster}: {line.state} ({fmt_duration(line.elapsed_s)} / "
                f"est. {fmt_duration(line.estimate_s)})" for line in lines)
    template = _HEADLINE.get(status, "*{run}* — {status}: {elapsed} elapsed of about {estimate}")
    if status == "failed" and all(line.state == "waiting" for line in lines):
        # Only the pre-flight step has no cluster: failing there means nothing was touched.
        template = ("⛔ *{run}* — did not start: the clusters no longer match the plan "
                    "(see the thread)")
        rows[0] = f"*{run_name}* — did not start: the clusters no longer match the plan"
    headline = template.format(run=run_name, status=status, elapsed=fmt_duration(elapsed_s),
                               estimate=fmt_duration(estimate_s))
    cells = [(line.cluster, line.state, f"{fmt_duration(line.elapsed_s)} / est. "
              f"{fmt_duration(line.estimate_s)}") for line in lines]
    return {"text": "\n".join(rows),
            "blocks": posts.board_blocks(run_name, status, headline, cells)}


def _servers(servers: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"    server {s.get('node')} {s.get('host') or ''}: {s.get('state')}, package "
            f"{s.get('version') or 'unknown'}" for s in servers]


def _checks(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f"{'✓' if c['ok'] else '✗'} {c['name']}: {c['detail']}" for c in checks]


def verification_message(run_name: str, result: Mapping[str, Any]) -> Payload:
    """A thread reply with one cluster's verification result."""
    ok = result.get("ok")
    head = (f"{'✅' if ok else '❌'} {run_name} — {result.get('cluster')} "
            f"{'verified' if ok else 'failed verification'}")
    if "waited_min" in result:
        head += (f" (back after {result['waited_min']} min, estimate "
                 f"{result.get('estimate_min')} min)")
    checks, servers = _checks(result.get("checks", [])), _servers(result.get("servers", []))
    rows = [head, *(f"  {c}" for c in checks), *servers]
    return {"text": "\n".join(rows),
            "blocks": posts.check_blocks(head, checks, [s.strip() for s in servers])}


def final_check_message(run_name: str, result: Mapping[str, Any]) -> Payload:
    """A thread reply with the supercluster's final check."""
    ok = result.get("ok")
    head = (f"{'✅' if ok else '❌'} {run_name} — final check of {result.get('cluster')}: "
            f"members {', '.join(result.get('members', []))}")
    checks = _checks(result.get("checks", []))
    return {"text": "\n".join([head, *(f"  {c}" for c in checks)]),
            "blocks": posts.check_blocks(head, checks, [])}


def escalation_message(run_name: str, *, cluster: str, condition: str, note: str,
                       details: Mapping[str, Any], contact: str,
                       notify: Sequence[str]) -> Payload:
    """The prompt to call Polycom Global Services, with everything they will ask for."""
    try:
        vendor = Condition(condition) in VENDOR_CONDITIONS
    except ValueError:
        vendor = False
    label = ("Vendor condition (guide, 'Call Polycom Global Services if'): " if vendor
             else "Check failed: ")
    call = (f"🚨 {run_name} — escalation on *{cluster}*: call {contact}."
            + (f" {' '.join(mention(n) for n in notify)}" if notify else ""))
    times = (f"install estimate {details.get('estimate_min', '?')} min, waited "
             f"{details.get('waited_min', '?')} min"
             if "estimate_min" in details or "waited_min" in details else "")
    servers = _servers(details.get("servers", []))
    failed = [f"✗ {c['name']}: {c['detail']}" for c in details.get("checks", []) if not c["ok"]]
    done = "; ".join(details.get("done") or ())
    next_steps = (f"The run is paused; nothing else is touched. Next: `/upgrade retry {run_name}` "
                  f"once it is dealt with, roll {cluster} back (only the last upgrade can be "
                  f"undone, on a stand-alone cluster), or `/upgrade abort {run_name}`.")
    rows = [call, label + note]
    if times:
        rows.append(f"Times: {times}")
    if details.get("last_answer"):
        rows.append(f"Last answer from the cluster: {details['last_answer']}")
    rows += servers + [f"  {f}" for f in failed]
    if done:
        rows.append(f"Already done: {done}")
    rows.append(next_steps)
    layout = posts.EscalationLayout(
        run_name=run_name, cluster=cluster, call=call, condition_label=label.rstrip(": "),
        condition=note, times=times, last_answer=str(details.get("last_answer") or ""),
        servers=[s.strip() for s in servers], failed_checks=failed, done=done,
        next_steps=next_steps)
    return {"text": "\n".join(rows), "blocks": posts.escalation_blocks(layout)}


# Notices that ask a person to act get buttons: (icon, words in the text) -> buttons.
def notice(run_name: str, icon: str, text: str, actions: Sequence[str] = ()) -> Payload:
    """A one-line thread reply: paused, failed, completed, expired, overrun requests.

    `actions` names the buttons to show ("overrun", "retry", "resume", "abort", ...).
    """
    line = f"{icon} {run_name} — {text}"
    return {"text": line, "blocks": posts.notice_blocks(run_name, line, actions)}
