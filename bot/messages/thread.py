"""Thread replies: verification results, the final check, escalations and notices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.engine.verification import (
    VENDOR_CHECKS,
    VENDOR_CONDITIONS,
    Check,
    ClusterReport,
    Condition,
    Report,
    SuperclusterReport,
)
from bot.messages import layouts
from bot.messages.common import Payload, mention


def _server_line(node: object, host: object, state: object, version: object) -> str:
    return f"    server {node} {host or ''}: {state}, package {version or 'unknown'}"


def _servers(servers: Sequence[Mapping[str, Any]]) -> list[str]:
    return [_server_line(s.get("node"), s.get("host"), s.get("state"), s.get("version"))
            for s in servers]


def _check_line(ok: bool, name: str, detail: str) -> str:
    # The guide's three conditions are the vendor's; everything else the bot checks on its own.
    whose = "vendor's condition" if name in VENDOR_CHECKS else "bot's own check"
    return f"{'✓' if ok else '✗'} {name} ({whose}): {detail}"


def _checks(checks: Iterable[Check]) -> list[str]:
    return [_check_line(c.ok, c.name, c.detail) for c in checks]


def verification_message(run_name: str, report: ClusterReport) -> Payload:
    """A thread reply with one cluster's verification result."""
    ok = report.verdict.ok
    head = (f"{'✅' if ok else '❌'} {run_name} — {report.cluster} "
            f"{'verified' if ok else 'failed verification'}")
    if report.waited_min is not None:
        head += f" (back after {report.waited_min} min, estimate {report.estimate_min} min)"
    checks = _checks(report.verdict.checks)
    servers = [_server_line(s.node_id, s.host_name, s.state, s.package_version)
               for s in report.verdict.servers]
    rows = [head, *(f"  {c}" for c in checks), *servers]
    return {"text": "\n".join(rows),
            "blocks": layouts.check_blocks(head, checks, [s.strip() for s in servers])}


def final_check_message(run_name: str, report: SuperclusterReport) -> Payload:
    """A thread reply with the supercluster's final check."""
    head = (f"{'✅' if report.verdict.ok else '❌'} {run_name} — final check of "
            f"{report.target}: members {', '.join(report.members)}")
    checks = _checks(report.verdict.checks)
    return {"text": "\n".join([head, *(f"  {c}" for c in checks)]),
            "blocks": layouts.check_blocks(head, checks, [])}


def report_message(run_name: str, report: Report) -> Payload:
    """The thread reply for a verifier's report, whichever kind it is."""
    if isinstance(report, SuperclusterReport):
        return final_check_message(run_name, report)
    return verification_message(run_name, report)


def escalation_message(run_name: str, *, cluster: str, condition: str, note: str,
                       details: Mapping[str, Any], contact: str,
                       notify: Sequence[str], step_id: int | None = None) -> Payload:
    """The prompt to call Polycom Global Services, with everything they will ask for."""
    try:
        vendor = Condition(condition) in VENDOR_CONDITIONS
    except ValueError:
        vendor = False
    label = ("Vendor condition (guide, 'Call Polycom Global Services if'): " if vendor
             else "The bot's own check failed (not one of the vendor's three conditions): ")
    call = (f"🚨 {run_name} — escalation on *{cluster}*: call {contact}."
            + (f" {' '.join(mention(n) for n in notify)}" if notify else ""))
    times = (f"install estimate {details.get('estimate_min', '?')} min, waited "
             f"{details.get('waited_min', '?')} min"
             if "estimate_min" in details or "waited_min" in details else "")
    servers = _servers(details.get("servers", []))
    failed = [_check_line(False, c["name"], c["detail"]) for c in details.get("checks", [])
              if not c["ok"]]
    done = "; ".join(details.get("done") or ())
    next_steps = (f"The run is paused; nothing else is touched. Next: `/upgrade retry {run_name}` "
                  f"once it is dealt with; `/upgrade rollback {run_name} {cluster}` (the "
                  "vendor's rollback: only the last upgrade can be undone, out of the "
                  f"supercluster first); `/upgrade restore {run_name}` (plan the way back to a "
                  f"served network); or `/upgrade abort {run_name}`.")
    impact = [str(line) for line in details.get("impact") or ()]
    rows = [call, label + note]
    if times:
        rows.append(f"Times: {times}")
    if details.get("last_answer"):
        rows.append(f"Last answer from the cluster: {details['last_answer']}")
    rows += servers + [f"  {f}" for f in failed]
    if done:
        rows.append(f"Already done: {done}")
    if impact:
        rows += ["Service now:", *(f"  {line}" for line in impact)]
    rows.append(next_steps)
    layout = layouts.EscalationLayout(
        run_name=run_name, cluster=cluster, call=call, condition_label=label.rstrip(": "),
        condition=note, times=times, last_answer=str(details.get("last_answer") or ""),
        servers=[s.strip() for s in servers], failed_checks=failed, done=done,
        next_steps=next_steps, impact=impact, step_id=step_id)
    return {"text": "\n".join(rows), "blocks": layouts.escalation_blocks(layout)}


# Notices that ask a person to act get buttons: (icon, words in the text) -> buttons.
def notice(run_name: str, icon: str, text: str, actions: Sequence[str] = ()) -> Payload:
    """A one-line thread reply: paused, failed, completed, expired, overrun requests.

    `actions` names the buttons to show ("overrun", "retry", "resume", "abort", ...).
    """
    line = f"{icon} {run_name} — {text}"
    return {"text": line, "blocks": layouts.notice_blocks(run_name, line, actions)}
