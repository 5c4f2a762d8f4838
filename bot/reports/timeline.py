"""The timeline picture of a run: per cluster, planned and actual phases, outage, escalations.

Rendered headless (matplotlib's Agg canvas on a `Figure`, never pyplot's global state, so two
threads may render at once). The PNG carries its rows in a text chunk so that a reader (and a
test) can tell which clusters it shows without looking at the pixels.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Phases people talk about, in the order a cluster goes through them, with their colours.
PHASES: tuple[tuple[str, str], ...] = (
    ("prepare", "#9e9e9e"), ("drain", "#ffb300"), ("out of service", "#8d6e63"),
    ("install", "#1e88e5"), ("verify", "#43a047"), ("join", "#8e24aa"),
    ("back in service", "#00897b"), ("check", "#546e7a"))
COLOURS = dict(PHASES)
ESCALATION_COLOUR = "#d32f2f"
OUTAGE_COLOUR = "#ffcdd2"
WINDOW_COLOUR = "#1565c0"


@dataclass(frozen=True)
class Span:
    """One phase of one cluster, from start to end."""

    phase: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Row:
    """One cluster (or the supercluster's own steps): what was planned and what happened."""

    name: str
    planned: tuple[Span, ...]
    actual: tuple[Span, ...]


@dataclass(frozen=True)
class Mark:
    """An escalation: when, on which row, and the condition in a few words."""

    at: datetime
    row: str
    label: str


@dataclass(frozen=True)
class Timeline:
    """Everything the picture shows."""

    title: str
    rows: tuple[Row, ...]
    now: datetime
    tz: str = "UTC"
    outage: tuple[datetime, datetime] | None = None
    window: tuple[datetime, datetime] | None = None
    escalations: tuple[Mark, ...] = ()


def render_png(timeline: Timeline, *, dpi: int = 100) -> bytes:
    """Return the timeline as PNG bytes (rows named in the PNG's `Rows` text chunk)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = build_figure(timeline)
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi, metadata={
        "Title": timeline.title, "Rows": ", ".join(r.name for r in timeline.rows)})
    return out.getvalue()


def build_figure(timeline: Timeline) -> Figure:
    """Draw the timeline on a new Figure (not registered with pyplot)."""
    from matplotlib.figure import Figure

    zone = ZoneInfo(timeline.tz)
    height = 1.6 + 0.7 * max(len(timeline.rows), 1)
    figure = Figure(figsize=(11, height), layout="constrained")
    axes = figure.add_subplot()
    names = [row.name for row in timeline.rows]
    # Rows from the top: the first cluster of the plan is the first row.
    ys = {name: len(names) - 1 - i for i, name in enumerate(names)}
    _backdrop(axes, timeline)
    for row in timeline.rows:
        _bars(axes, row.planned, ys[row.name] + 0.22, 0.22, alpha=0.45, hatch="//")
        _bars(axes, row.actual, ys[row.name] - 0.12, 0.4, alpha=1.0, hatch=None)
    for mark in timeline.escalations:
        y = ys.get(mark.row, 0)
        axes.plot([_num(mark.at)], [y], marker="X", markersize=13, color=ESCALATION_COLOUR,
                  zorder=5)
        axes.annotate(f"escalated: {mark.label}", (_num(mark.at), y), xytext=(8, 10),
                      textcoords="offset points", color=ESCALATION_COLOUR, fontsize=8,
                      zorder=6)
    _axes_cosmetics(axes, timeline, names, zone)
    return figure


def _num(moment: datetime) -> float:
    from matplotlib.dates import date2num

    return float(date2num(moment))


def _bars(axes: Axes, spans: Sequence[Span], y: float, height: float, *, alpha: float,
          hatch: str | None) -> None:
    for span in spans:
        start, end = _num(span.start), _num(max(span.end, span.start + timedelta(seconds=20)))
        axes.barh(y, end - start, left=start, height=height, color=COLOURS.get(span.phase,
                  "#607d8b"), alpha=alpha, hatch=hatch, edgecolor="white", linewidth=0.5)


def _backdrop(axes: Axes, timeline: Timeline) -> None:
    if timeline.outage is not None:
        start, end = timeline.outage
        axes.axvspan(_num(start), _num(end), color=OUTAGE_COLOUR, alpha=0.6, zorder=0,
                     label="outage")
    if timeline.window is not None:
        for edge, label in zip(timeline.window, ("window opens", "window closes"), strict=True):
            axes.axvline(_num(edge), color=WINDOW_COLOUR, linestyle="--", linewidth=1.2,
                         label=label)
    axes.axvline(_num(timeline.now), color="#424242", linestyle=":", linewidth=1, label="now")


def _axes_cosmetics(axes: Axes, timeline: Timeline, names: list[str], zone: ZoneInfo) -> None:
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.patches import Patch

    axes.set_yticks(range(len(names)), list(reversed(names)))
    axes.set_ylim(-0.7, max(len(names), 1) - 0.3)
    axes.xaxis.set_major_locator(AutoDateLocator(tz=zone, minticks=4, maxticks=10))
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=zone))
    axes.set_xlabel(f"time ({timeline.tz}); upper thin bars planned, lower bars actual")
    axes.set_title(timeline.title, fontsize=11, loc="left")
    axes.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    axes.set_axisbelow(True)
    used = {s.phase for r in timeline.rows for s in (*r.planned, *r.actual)}
    handles = [Patch(color=colour, label=phase) for phase, colour in PHASES if phase in used]
    extra, labels = axes.get_legend_handles_labels()
    axes.legend(handles=[*handles, *extra], labels=[*(h.get_label() for h in handles), *labels],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
