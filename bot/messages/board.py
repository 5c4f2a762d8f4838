"""The status board that replaces the plan message while a run goes.

Per cluster: its phase, elapsed against estimate, and its expected (or actual) end as a clock
time in the run's zone; for the run: its expected end, the time left in the window and the
outage so far; who approved and when; each escalation and who acknowledged it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.engine.durations import say_duration
from bot.engine.states import RunStatus
from bot.messages import layouts
from bot.messages.common import Payload, mention


@dataclass(frozen=True)
class ClusterLine:
    """One line of the status board."""

    cluster: str
    state: str
    elapsed_s: float
    estimate_s: float
    expected_end: datetime | None = None  # still to come
    finished_at: datetime | None = None  # every step of the cluster done
    overdue: Mapping[str, float] | None = None  # minutes: past_min, estimate_min, …


@dataclass(frozen=True)
class BoardEscalation:
    """An escalation as the board shows it."""

    cluster: str
    condition: str
    at: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved: bool = False


@dataclass(frozen=True)
class BoardFacts:
    """What the board shows beside the clusters (times are aware; shown in `tz`)."""

    tz: str = "UTC"
    now: datetime | None = None
    expected_end: datetime | None = None
    window_end: datetime | None = None
    outage_s: float | None = None
    approvals: Sequence[tuple[str, datetime]] = ()
    escalations: Sequence[BoardEscalation] = field(default_factory=tuple)

    def clock(self, at: datetime) -> str:
        """A time of day in the run's zone."""
        return at.astimezone(ZoneInfo(self.tz)).strftime("%H:%M %Z")


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
_OVER = frozenset({"completed", "failed", "aborted", "expired", "rejected"})


def _times(line: ClusterLine, facts: BoardFacts) -> str:
    text = f"{say_duration(line.elapsed_s)} / est. {say_duration(line.estimate_s)}"
    if line.finished_at is not None:
        return f"{text}; done {facts.clock(line.finished_at)}"
    if line.expected_end is not None:
        return f"{text}; expected end {facts.clock(line.expected_end)}"
    return text


def _overdue(line: ClusterLine) -> str:
    late = line.overdue or {}
    return (f"OVERDUE: {say_duration(late.get('past_min', 0) * 60)} past its "
            f"{say_duration(late.get('estimate_min', 0) * 60)} install estimate; escalation at "
            f"{say_duration(late.get('escalate_at_min', 0) * 60)}")


def run_facts(status: RunStatus, facts: BoardFacts) -> list[str]:
    """The run-wide lines: expected end, window left, outage, escalations, approvals."""
    rows: list[str] = []
    parts = []
    if facts.expected_end is not None and status.words not in _OVER:
        parts.append(f"expected end {facts.clock(facts.expected_end)}")
    if facts.window_end is not None and facts.now is not None and status.words not in _OVER:
        left = (facts.window_end - facts.now).total_seconds()
        parts.append(f"window ends {facts.clock(facts.window_end)} ("
                     + (f"{say_duration(left)} left" if left > 0 else
                        f"passed {say_duration(-left)} ago") + ")")
    if facts.outage_s is not None:
        parts.append(f"outage so far {say_duration(facts.outage_s)} (time with a cluster "
                     "out of service)")
    if parts:
        rows.append(" · ".join(p[0].upper() + p[1:] if i == 0 else p
                               for i, p in enumerate(parts)))
    for esc in facts.escalations:
        state = ("dealt with" if esc.resolved else
                 f"acknowledged by {mention(esc.acknowledged_by)} at "
                 f"{facts.clock(esc.acknowledged_at)}"
                 if esc.acknowledged_by and esc.acknowledged_at else "NOT acknowledged yet")
        rows.append(f"🚨 Escalation on {esc.cluster} ({esc.condition}) at "
                    f"{facts.clock(esc.at)}: {state}")
    if facts.approvals:
        rows.append("Approved by " + ", ".join(f"{mention(u)} ({facts.clock(at)})"
                                                for u, at in facts.approvals))
    return rows


def board_message(run_name: str, status: RunStatus, lines: Iterable[ClusterLine], *,
                  elapsed_s: float, estimate_s: float,
                  facts: BoardFacts | None = None,
                  checklist: Sequence[str] = ()) -> Payload:
    """The status board that replaces the plan message while the run goes."""
    lines, facts = list(lines), facts or BoardFacts()
    rows = [f"*{run_name}* — {status.words}: {say_duration(elapsed_s)} elapsed of about "
            f"{say_duration(estimate_s)}"]
    template = _HEADLINE.get(status.words,
                             "*{run}* — {status}: {elapsed} elapsed of about {estimate}")
    if status is RunStatus.FAILED and all(line.state == "waiting" for line in lines):
        # Only the pre-flight step has no cluster: failing there means nothing was touched.
        template = ("⛔ *{run}* — did not start: the clusters no longer match the plan "
                    "(see the thread)")
        rows[0] = f"*{run_name}* — did not start: the clusters no longer match the plan"
    headline = template.format(run=run_name, status=status.words, elapsed=say_duration(elapsed_s),
                               estimate=say_duration(estimate_s))
    extra = run_facts(status, facts)
    if checklist:  # who acknowledged each manual item, and when
        extra.append("Checklist: " + "; ".join(checklist))
    cells = [(line.cluster, line.state, _times(line, facts)
              + (f" — {_overdue(line)}" if line.overdue else "")) for line in lines]
    rows.extend(f"  • {c}: {s} ({t})" for c, s, t in cells)
    rows.extend(extra)
    return {"text": "\n".join(rows),
            "blocks": layouts.board_blocks(run_name, status, headline, cells, extra)}
