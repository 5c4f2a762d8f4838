"""The status board that replaces the plan message while a run goes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.engine.durations import say_duration
from bot.engine.states import RunStatus
from bot.messages import layouts
from bot.messages.common import Payload


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


def board_message(run_name: str, status: RunStatus, lines: Iterable[ClusterLine], *,
                  elapsed_s: float, estimate_s: float,
                  checklist: Sequence[str] = ()) -> Payload:
    """The status board that replaces the plan message while the run goes."""
    lines = list(lines)
    rows = [f"*{run_name}* — {status.words}: {say_duration(elapsed_s)} elapsed of about "
            f"{say_duration(estimate_s)}"]
    rows.extend(f"  • {line.cluster}: {line.state} ({say_duration(line.elapsed_s)} / "
                f"est. {say_duration(line.estimate_s)})" for line in lines)
    template = _HEADLINE.get(status.words,
                             "*{run}* — {status}: {elapsed} elapsed of about {estimate}")
    if status is RunStatus.FAILED and all(line.state == "waiting" for line in lines):
        # Only the pre-flight step has no cluster: failing there means nothing was touched.
        template = ("⛔ *{run}* — did not start: the clusters no longer match the plan "
                    "(see the thread)")
        rows[0] = f"*{run_name}* — did not start: the clusters no longer match the plan"
    headline = template.format(run=run_name, status=status.words, elapsed=say_duration(elapsed_s),
                               estimate=say_duration(estimate_s))
    if checklist:  # who acknowledged each manual item, and when
        rows.append("  Checklist: " + "; ".join(checklist))
    cells = [(line.cluster, line.state, f"{say_duration(line.elapsed_s)} / est. "
              f"{say_duration(line.estimate_s)}") for line in lines]
    blocks = layouts.board_blocks(run_name, status, headline, cells)
    if checklist:
        blocks.insert(-1 if blocks and blocks[-1].get("type") == "actions" else len(blocks),
                      layouts.context("Checklist: " + "; ".join(checklist)))
    return {"text": "\n".join(rows), "blocks": blocks}
