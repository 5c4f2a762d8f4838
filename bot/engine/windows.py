"""Maintenance windows and time arithmetic: parsing, expiry, start, finish prediction, overrun."""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.engine.durations import DurationError, parse_duration, spell_duration
from bot.engine.errors import UserError
from bot.engine.plans import StepKind, StepSpec
from bot.engine.schedule import schedule_estimate
from bot.engine.states import TERMINAL_STEP, StepStatus

_WINDOW = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2})/(.*)")
_EN_DASH = "\u2013"  # typographic range dash, as people write time ranges
_WINDOW_FORM = "YYYY-MM-DDTHH:MM/DURATION, e.g. 2026-11-28T22:00/4h (DURATION like 4h, 90m, 2h30m)"


class WindowError(UserError, ValueError):
    """A window or time zone that cannot be understood; the message says what was expected."""


def zone(name: str) -> ZoneInfo:
    """Return the named IANA time zone, or raise WindowError asking for Area/City."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(f"unknown time zone '{name}': use an IANA name in Area/City form, "
                          "e.g. America/Chicago or Europe/Paris (or UTC)") from None


@dataclass(frozen=True)
class Window:
    """A maintenance window: an aware UTC start, a duration, and the zone people think in."""

    start: datetime
    duration: timedelta
    tz: str

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise WindowError("a window's start must carry a time zone")
        if self.duration <= timedelta(0):
            raise WindowError("a window must last longer than zero minutes")
        zone(self.tz)
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def end(self) -> datetime:
        """When the window closes (UTC)."""
        return self.start + self.duration

    def contains(self, now: datetime) -> bool:
        """Return True when now is inside the window (start included, end excluded)."""
        return self.start <= now < self.end

    def local(self, dt: datetime) -> datetime:
        """Return the time in the window's zone."""
        return dt.astimezone(zone(self.tz))

    def describe(self) -> str:
        """Describe it as people read it, e.g. "2026-11-28 22:00-02:00 America/Chicago (4h)"."""
        start, end = self.local(self.start), self.local(self.end)
        # The end's date is shown only when it could not be read as "the next morning".
        end_text = end.strftime("%H:%M" if self.duration < timedelta(days=1) else "%Y-%m-%d %H:%M")
        span = f"{start:%Y-%m-%d %H:%M}{_EN_DASH}{end_text}"
        return f"{span} {self.tz} ({spell_duration(self.duration)})"


def _length(text: str) -> timedelta:
    """A window's length: hours and/or minutes, at least one minute."""
    try:
        length = parse_duration(text, units="hm")
    except DurationError as exc:
        raise WindowError(f"'{text}' is not a duration: {exc}") from None
    if length < timedelta(minutes=1):
        raise WindowError(f"'{text}' is an empty window: give it at least one minute")
    return length


def parse_window(text: str, tz: str = "UTC") -> Window:
    """Parse "YYYY-MM-DDTHH:MM/DURATION" as local time in tz (DST gaps and folds: fold=0)."""
    match = _WINDOW.fullmatch(text.strip())
    if match is None:
        raise WindowError(f"'{text}' is not a window: expected {_WINDOW_FORM}")
    year, month, day, hour, minute = (int(g) for g in match.groups()[:5])
    duration = _length(match.group(6))
    place = zone(tz)
    try:
        # fold=0: an hour that happens twice means its first occurrence; a skipped hour is read
        # with the offset before the change, which lands it just after the change.
        local = datetime(year, month, day, hour, minute, tzinfo=place, fold=0)
    except ValueError as exc:
        raise WindowError(f"'{text}' is not a real date and time ({exc}): expected "
                          f"{_WINDOW_FORM}") from None
    return Window(start=local.astimezone(UTC), duration=duration, tz=tz)


def expired_unapproved(*, now: datetime, window: Window, estimate_s: float) -> bool:
    """Return True when the window no longer leaves room for the run's estimated duration."""
    return now + timedelta(seconds=estimate_s) > window.end


def should_start(*, now: datetime, window: Window | None) -> bool:
    """Return True when an approved run may start: no window, or inside its window."""
    return window is None or window.contains(now)


def predict_finish(*, now: datetime, remaining_s: float) -> datetime:
    """Return when the run should end if the remaining work takes its estimate."""
    return now + timedelta(seconds=remaining_s)


def needs_overrun(*, now: datetime, remaining_s: float, window: Window | None,
                  overrun_approved: bool) -> bool:
    """Return True when the run would pass its window's end and nobody approved that yet."""
    if window is None or overrun_approved:
        return False
    return predict_finish(now=now, remaining_s=remaining_s) > window.end


@dataclass(frozen=True)
class StepProgress:
    """A step of a running plan as the database knows it."""

    key: str
    kind: StepKind
    deps: tuple[str, ...]
    status: StepStatus
    estimate_s: float
    started_at: datetime | None


# Started steps that keep their elapsed time; a failed or escalated step starts over on retry.
_UNDER_WAY = frozenset({StepStatus.ACTIVE, StepStatus.BLOCKED})


def remaining_seconds(*, now: datetime, steps: Sequence[StepProgress],
                      history: Mapping[str, Sequence[float]],
                      max_parallel: Mapping[StepKind, int]) -> float:
    """Estimate the seconds left: finished steps count 0, the rest are list-scheduled."""
    return step_ends(now=now, steps=steps, history=history, max_parallel=max_parallel)[0]


def step_ends(*, now: datetime, steps: Sequence[StepProgress],
              history: Mapping[str, Sequence[float]],
              max_parallel: Mapping[StepKind, int]) -> tuple[float, dict[str, float]]:
    """The seconds left in all, and for each unfinished step the seconds until it ends."""
    left = [s for s in steps if s.status not in TERMINAL_STEP]
    keys = {s.key for s in left}
    specs = [StepSpec(key=s.key, kind=s.kind, cluster=None,
                      deps=tuple(d for d in s.deps if d in keys),
                      estimate_s=_left_of(s, now, history.get(s.key)), title=s.key)
             for s in left]
    total, times = schedule_estimate(specs, max_parallel=max_parallel)
    return total, {key: end for key, (_, end) in times.items()}


def covered_seconds(spans: Sequence[tuple[datetime, datetime | None]], now: datetime) -> float:
    """Seconds covered by at least one span (an open span runs until now)."""
    total, reach = 0.0, None
    for start, end in sorted((s, e or now) for s, e in spans):
        if reach is None or start > reach:
            total += (end - start).total_seconds()
            reach = end
        elif end > reach:
            total += (end - reach).total_seconds()
            reach = end
    return total


def _left_of(step: StepProgress, now: datetime, past: Sequence[float] | None) -> float:
    estimate = float(statistics.median(past)) if past else step.estimate_s
    if step.status not in _UNDER_WAY or step.started_at is None:
        return estimate
    elapsed = (now - step.started_at).total_seconds()
    # A step past its estimate is still running: assume a tenth of it is left, never zero.
    return max(estimate - elapsed, 0.1 * estimate)
