"""How the bot's posted messages look in Slack: Block Kit layouts for `bot.messages`.

`bot.messages` decides what is said (and the plain-text fallback); these functions lay the same
words out as blocks and add the buttons. They take strings already written, so this module needs
nothing from `bot.messages`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from bot.engine.states import RunEvent, RunStatus, run_may
from bot.messages.blocks import (
    Block,
    actions,
    bullets,
    button,
    context,
    fields,
    header,
    section,
    sections,
)
from bot.messages.ids import ActionId, RunRef


def run_ref(run_name: str) -> RunRef | None:
    """The reference of a run named like R12, or None for a plan not yet submitted."""
    try:
        return RunRef.decode(run_name)
    except ValueError:
        return None


# -- buttons ------------------------------------------------------------------------------------

_ABORT_CONFIRM = ("Abort the run?", "Clusters stay as they are now; an install already under "
                  "way finishes on its cluster. Nothing new starts.")
_BUTTONS: Mapping[str, tuple[str, ActionId, str | None, tuple[str, str] | None]] = \
    MappingProxyType({
        "approve": ("Approve", ActionId.APPROVE, "primary", None),
        "reject": ("Reject", ActionId.REJECT, "danger",
                   ("Reject the plan?", "A rejected plan ends; a new plan is needed.")),
        "overrun": ("Approve overrun", ActionId.APPROVE_OVERRUN, "primary", None),
        "retry": ("Retry verification", ActionId.RETRY, "primary", None),
        "resume": ("Resume", ActionId.RESUME, "primary", None),
        "acknowledge": ("Acknowledge", ActionId.ACKNOWLEDGE, "primary", None),
        "abort": ("Abort", ActionId.ABORT, "danger", _ABORT_CONFIRM),
        # The incremental pause for the people's work: resuming is what "done" means.
        "continue": ("Done, continue", ActionId.RESUME, "primary", None),
        "ack:release-notes": ("Acknowledge: release notes read", ActionId.ACK_RELEASE_NOTES,
                              "primary", None),
        "ack:backup": ("Acknowledge: backup downloaded", ActionId.ACK_BACKUP, "primary", None),
        "ack:licence-keys": ("Acknowledge: licence keys obtained", ActionId.ACK_LICENCE_KEYS,
                             "primary", None),
    })

# The buttons that take a held run on, and the run event each asks the table about.
_WAYS_ON = (("resume", RunEvent.RESUME), ("retry", RunEvent.RETRY),
            ("overrun", RunEvent.APPROVE_OVERRUN))


def board_actions(status: RunStatus) -> tuple[str, ...]:
    """What a person can do from the status board: what the table allows now, and abort."""
    names = tuple(name for name, event in _WAYS_ON if run_may(status, event))
    return (*names, "abort") if names else ()


def buttons(run_name: str, names: Sequence[str], *, label: str = "") -> list[Block]:
    """An actions block with the named buttons for a run (none when it has no reference)."""
    ref = run_ref(run_name)
    if ref is None or not names:
        return []
    elements = []
    for name in names:
        text, action, style, confirm = _BUTTONS[name]
        elements.append(button(label if label and name == "retry" else text, action, ref,
                               style=style, confirm=confirm))
    return [actions(f"{name_of(names)}:{ref.encode()}", elements)]


def name_of(names: Sequence[str]) -> str:
    """A block id prefix for a set of buttons."""
    return "-".join(names)


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanLayout:
    """The words of a plan message, as `bot.messages.plan_message` wrote them."""

    run_name: str
    title: str
    head: str
    versions: str
    strategy: str
    reasons: Sequence[str]
    order: Sequence[str]
    estimate: str
    window: str
    checklist: Sequence[str]
    factors: Sequence[str]
    approvals: str
    approval_help: str
    approved_by: str
    status: str
    approvable: bool
    prechecks: Sequence[str] = ()
    acknowledge: Sequence[str] = ()  # button names of the items still to acknowledge


def plan_blocks(p: PlanLayout) -> list[Block]:
    """The plan: summary fields, why, order, checklist, factors, approvals, buttons."""
    blocks: list[Block] = [header(p.title), section(p.head), fields([
        ("Versions", p.versions), ("Strategy", p.strategy), ("Window", p.window),
        ("Estimated duration", p.estimate), ("Approvals", p.approvals),
        ("Status", p.status or "awaiting approval")])]
    blocks += sections("*Why this strategy*\n" + bullets(p.reasons))
    blocks += sections("*Cluster order and estimates*\n"
                       + "\n".join(f"{i}. {line}" for i, line in enumerate(p.order, 1)))
    if p.prechecks:
        blocks += sections("*Pre-checks (validation gate: read now, and again at the start)*\n"
                           + "\n".join(p.prechecks))
    blocks += sections("*Pre-flight checklist*\n" + "\n".join(p.checklist))
    if p.factors:
        blocks += sections("*Factors to consider before an incremental upgrade (all ten, "
                           "guide)*\n" + "\n".join(f"{i}. {f}" for i, f in enumerate(p.factors, 1)))
    blocks.append(context(*(t for t in (p.approval_help, p.approved_by) if t)))
    if p.approvable:
        blocks += buttons(p.run_name, ("approve", "reject"))
    if p.acknowledge:
        blocks += buttons(p.run_name, p.acknowledge)
    return blocks


# -- the status board ---------------------------------------------------------------------------

STATE_ICON: Mapping[str, str] = MappingProxyType({
    "waiting": "⏳", "ESCALATED": "🚨", "FAILED": "⛔", "blocked": "⏸️", "verified": "✅",
    "in service": "✅", "joined": "✅", "done": "✅", "logged back in": "🔁",
})


def board_blocks(run_name: str, status: RunStatus, headline: str,
                 rows: Sequence[tuple[str, str, str]], extra: Sequence[str] = ()) -> list[Block]:
    """The status board: one line per cluster (state, elapsed vs estimate, end), run facts."""
    lines = [f"{'⏰' if 'OVERDUE' in times else STATE_ICON.get(state, '🔧')} *{cluster}* — "
             f"{state} ({times})" for cluster, state, times in rows]
    return [section(headline), *sections("\n".join(lines) or "_no clusters_"),
            *(sections("\n".join(extra)) if extra else []),
            context("This message is the run's status board; every verification result and "
                    "escalation is in its thread."),
            *buttons(run_name, board_actions(status))]


# -- thread replies -----------------------------------------------------------------------------


def check_blocks(head: str, checks: Sequence[str], servers: Sequence[str]) -> list[Block]:
    """A verification result: what was checked, and each server's state and version."""
    blocks = [section(head)]
    if checks:
        blocks += sections("\n".join(checks))
    if servers:
        blocks.append(context(*servers[:10]))
    return blocks


def rollback_button(run_name: str, step_id: int | None, cluster: str) -> list[Block]:
    """A "Roll back CLUSTER" button naming the escalated step (whose cluster is rolled back)."""
    ref = run_ref(run_name)
    if ref is None or step_id is None:
        return []
    return [actions(f"rollback:{ref.encode()}", [button(
        f"Roll back {cluster}", ActionId.ROLLBACK, RunRef(ref.run_id, step_id),
        confirm=(f"Plan the rollback of {cluster}?", f"The bot posts the vendor's rollback "
                 f"procedure for {cluster} as a plan; nothing changes until it is approved."))])]


def notice_blocks(run_name: str, text: str, names: Sequence[str]) -> list[Block]:
    """A one-line thread reply, with buttons when a person has to act."""
    return [section(text), *buttons(run_name, names)]
