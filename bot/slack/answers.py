"""Answers only the asker sees (help, inventory, status, history, results) and the Home tab."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.engine.durations import say_duration
from bot.engine.planner import Plan
from bot.engine.states import APPROVABLE
from bot.messages import STRATEGY_TITLE, escape, layouts, mention
from bot.messages.blocks import (
    actions,
    bullets,
    context,
    ephemeral,
    header,
    plain,
    section,
    sections,
)
from bot.messages.ids import ActionId
from bot.services import (
    ApprovalResult,
    AuditLine,
    ClusterHealth,
    RunSummary,
    StagedCluster,
)
from bot.slack.grammar import USAGE

Answer = dict[str, Any]

ICON = {"awaiting_approval": "🗳️", "approved": "👍", "scheduled": "🗓️", "running": "▶️",
        "paused": "⏸️", "escalated": "🚨", "awaiting_overrun": "⏱️", "completed": "🎉",
        "aborted": "⏹️", "rejected": "🛑", "expired": "⌛", "failed": "⛔"}
_HELP = {
    "inventory": "clusters, versions and health, read live",
    "plan": "post a plan for approval (operators)",
    "status": "one run in detail, or every run not over yet",
    "pause": "operators", "resume": "operators", "abort": "operators",
    "retry": "after an escalation has been dealt with (operators)",
    "history": "the latest runs",
    "rollback": "plan the vendor's rollback of one cluster of a run (operators; approval)",
    "restore": "plan the way back to a served network after an abort or an escalation "
               "(operators; approval)",
    "audit": "who approved what and when, every state change of a run (privately)",
    "verify": "the final checks now, read-only; the result is posted to the channel",
    "evidence": "the run's evidence bundle (zip) uploaded to its thread",
    "stage": "upload and check the package on every cluster ahead of the window (operators)",
}
AUDIT_LINES_MAX = 120  # an ephemeral answer stays readable; the CLI exports the whole trail
_PERSON = re.compile(r"[UW][A-Z0-9]{2,}")


def text_of(lines: Sequence[str]) -> str:
    """Join answer lines."""
    return "\n".join(lines)


def help_answer() -> Answer:
    """Every subcommand with its grammar."""
    lines = [f"`{USAGE[verb]}` — {_HELP.get(verb, 'this help')}" for verb in USAGE]
    lines.append("`/upgrade` with no words — the planning form (operators)")
    lines.append("TARGET is a supercluster or cluster name; runs are named R1, R2, …; a window "
                 "is local time in tz (default UTC), e.g. `window=2026-11-28T22:00/4h "
                 "tz=America/Chicago`.")
    return ephemeral(text_of(lines), [header("/upgrade"), *sections(text_of(lines))])


def inventory_answer(rows: Sequence[ClusterHealth]) -> Answer:
    """Every cluster as read just now."""
    lines = []
    for r in rows:
        where = f" ({r.supercluster})" if r.supercluster else " (stand-alone)"
        state = (f"⚠️ {r.problem}" if r.problem else
                 f"✅ {r.servers_up} of {r.servers_expected} servers up")
        uploaded = f", package {r.uploaded} uploaded" if r.uploaded else ""
        lines.append(f"*{r.name}*{where}: {r.version or 'version unknown'} — {state}{uploaded}")
    body = text_of(lines) or "The inventory is empty."
    return ephemeral(body, [header("Inventory (read live)"), *sections(body)])


def planned_answer(name: str, plan: Plan, channel: str) -> Answer:
    """What the asker sees once the plan is posted."""
    text = (f"{name} posted in <#{channel}>: {plan.target} → {plan.to_version}, "
            f"{STRATEGY_TITLE.get(plan.strategy, plan.strategy.value)}, about "
            f"{say_duration(plan.total_estimate_s)}. It starts once approved.")
    return ephemeral(text)


def _line(run: RunSummary) -> str:
    window = f", window {run.window}" if run.window else ""
    return (f"{ICON.get(run.status, '•')} *{run.name}* {run.target} → {run.to_version} "
            f"({run.strategy}): {run.status.words}{window}, requested by "
            f"{mention(run.requester)} {run.created_at:%Y-%m-%d %H:%M} UTC")


def overview_answer(runs: Sequence[RunSummary]) -> Answer:
    """Every run not over yet."""
    body = text_of([_line(r) for r in runs]) or "No run is under way or waiting."
    return ephemeral(body, sections(body))


def status_answer(run: RunSummary, steps: Sequence[tuple[str, str, str]]) -> Answer:
    """One run, step by step."""
    marks = {"done": "✅", "skipped": "⏭️", "active": "🔧", "pending": "⏳", "blocked": "⏸️",
             "escalated": "🚨", "failed": "⛔", "cancelled": "✖️"}
    lines = [_line(run)]
    if run.pause_reason:
        lines.append(f"Held: {run.pause_reason}")
    lines += [f"{marks.get(status, '•')} {key}: {status}" + (f" — {note}" if note else "")
              for key, status, note in steps]
    return ephemeral(text_of(lines), sections(text_of(lines)))


def history_answer(runs: Sequence[RunSummary], target: str | None) -> Answer:
    """The latest runs, newest first."""
    lines = []
    for r in runs:
        took = (f", took {say_duration((r.finished_at - r.started_at).total_seconds())}"
                if r.finished_at and r.started_at else "")
        lines.append(_line(r) + took)
    body = text_of(lines) or f"No runs yet{f' for {escape(target)}' if target else ''}."
    return ephemeral(body, [header(f"History{f' of {target}' if target else ''}"),
                            *sections(body)])


def audit_answer(run: RunSummary, lines: Sequence[AuditLine]) -> Answer:
    """A run's audit trail, oldest first: who did what and when."""
    shown = list(lines)[-AUDIT_LINES_MAX:]
    body = [f"{line.at:%Y-%m-%d %H:%M:%S} UTC · {_actor(line.actor)} · {_did(line)}"
            for line in shown]
    if len(lines) > len(shown):
        body.insert(0, f"_{len(lines) - len(shown)} earlier entries left out: "
                       f"`upgradebot audit {run.name} --format csv` exports them all_")
    text = text_of([f"Audit trail of {run.name} ({run.target} → {run.to_version}, "
                    f"now {run.status.words}):", *body]) if body else \
        f"{run.name} has no audit entries."
    return ephemeral(text, [header(f"Audit trail of {run.name}"), *sections(text)])


def _actor(actor: str) -> str:
    return mention(actor) if _PERSON.fullmatch(actor) else f"`{escape(actor)}`"


def _did(line: AuditLine) -> str:
    """What an audit entry says, in words (its stored values escaped)."""
    d = {k: escape(str(v)) for k, v in line.detail.items() if v not in (None, "")}
    step = escape(line.step or "")
    kind, _, what = line.action.partition(".")
    if line.action == "approval.given":
        return f"approved ({d.get('source', 'unknown source')})"
    if line.action == "approval.withdrawn":
        return "withdrew an approval"
    if line.action == "checklist.acknowledged":
        return f"acknowledged {d.get('words') or d.get('item', 'a checklist item')}"
    if line.action == "run.planned":
        return f"planned it ({d.get('strategy', '?')} strategy)"
    if kind == "run":
        why = f" — {d['reason']}" if "reason" in d else ""
        return f"{what}: {d.get('from', '?')} → {d.get('to', '?')}{why}"
    if kind == "step":
        note = f" — {d['note']}" if "note" in d else ""
        return f"step {step} {what}: {d.get('from', '?')} → {d.get('to', '?')}{note}"
    if kind == "operator":
        return f"asked to {what}"
    return escape(line.action)
def verified_answer(target: str, ok: bool, summary: str) -> Answer:
    """What the asker sees once the checks are posted."""
    return ephemeral(f"{'✅' if ok else '❌'} {target}: {summary} (posted to the channel)")


def evidence_answer(run: str) -> Answer:
    """What the asker sees once the bundle is queued."""
    return ephemeral(f"The evidence bundle of {run} is being uploaded to its thread.")


def approval_answer(run: RunSummary, result: ApprovalResult, verb: str) -> Answer:
    """What became of an approval, rejection or withdrawal."""
    if not result.counted:
        return ephemeral(f"{run.name}: not counted — {result.reason}.")
    if verb == "reject":
        return ephemeral(f"{run.name} rejected.")
    return ephemeral(f"{run.name}: {verb} counted ({result.approvals} of {result.required}); "
                     f"the run is {result.status.words}.")


def home_view(user: str, *, operator: bool, approver: bool, active: Sequence[RunSummary],
              recent: Sequence[RunSummary], notice: str = "") -> dict[str, Any]:
    """The Home tab: your roles, a planning button, runs under way with their buttons, history."""
    roles = [r for r, held in (("operator", operator), ("approver", approver)) if held]
    blocks = [header("DMA upgrades"),
              section(f"Hello {mention(user)} — you are "
                      + (" and ".join(roles) if roles else "a reader (status and history)")
                      + ".")]
    if notice:
        blocks.append(section(notice))
    if operator:
        blocks.append(actions("home-plan", [{
            "type": "button", "text": plain("Plan an upgrade", 75), "style": "primary",
            "action_id": ActionId.OPEN_PLANNER.value, "value": "plan"}]))
    blocks.append(section("*Under way or waiting*" + ("" if active else "\n_nothing_")))
    for run in active[:20]:  # a Home tab holds 100 blocks: two per run, the newest first
        blocks.append(section(_line(run)))
        # The board's buttons, for those whose role may press them.
        if run.status in APPROVABLE:
            names: tuple[str, ...] = ("approve", "reject") if approver else ()
        else:
            names = layouts.board_actions(run.status) if operator else ()
        blocks += layouts.buttons(run.name, names)
    blocks += [section("*Latest runs*\n" + (text_of([_line(r) for r in recent]) or "_none yet_")),
               context(bullets(f"`{USAGE[v]}`" for v in USAGE))]
    return {"type": "home", "blocks": blocks}


def staged_answer(target: str, version: str, rows: Sequence[StagedCluster]) -> Answer:
    """Staging, cluster by cluster: uploaded, SHA-1 checked, estimate (no service touched)."""
    lines = [f"Staging {version} on {target} (upload and check only; no cluster's service "
             "was touched):"]
    lines += [f"{'✅' if r.ok else '❌'} {r.cluster}: {r.detail}" for r in rows]
    if all(r.ok for r in rows):
        lines.append("A run of these clusters finds the package there and skips the upload.")
    return ephemeral(text_of(lines))
