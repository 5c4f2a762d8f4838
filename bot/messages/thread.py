"""Thread replies: verification results, the final check and notices (escalations: `escalation`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.engine.verification import (
    VENDOR_CHECKS,
    Check,
    ClusterReport,
    Report,
    SuperclusterReport,
)
from bot.messages import layouts
from bot.messages.common import Payload


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


# Notices that ask a person to act get buttons: (icon, words in the text) -> buttons.
def notice(run_name: str, icon: str, text: str, actions: Sequence[str] = ()) -> Payload:
    """A one-line thread reply: paused, failed, completed, expired, overrun requests.

    `actions` names the buttons to show ("overrun", "retry", "resume", "abort", ...).
    """
    line = f"{icon} {run_name} — {text}"
    return {"text": line, "blocks": layouts.notice_blocks(run_name, line, actions)}
