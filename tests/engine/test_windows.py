"""Maintenance windows: how operators write them, when runs start, expire, and overrun."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.durations import parse_duration
from bot.engine.planner import StepKind
from bot.engine.states import StepStatus
from bot.engine.windows import (
    StepProgress,
    Window,
    WindowError,
    expired_unapproved,
    needs_overrun,
    parse_window,
    predict_finish,
    remaining_seconds,
    should_start,
)

HOUR = 3600.0
DASH = "\u2013"  # the range dash of describe()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_window_in_chicago_on_saturday_night() -> None:
    window = parse_window("2026-11-28T22:00/4h", "America/Chicago")
    assert window.start == utc(2026, 11, 29, 4, 0)  # CST is UTC-6
    assert window.end == utc(2026, 11, 29, 8, 0)
    assert window.describe() == f"2026-11-28 22:00{DASH}02:00 America/Chicago (4h)"
    assert window.local(window.start).hour == 22


@pytest.mark.parametrize(("text", "minutes"), [("4h", 240), ("90m", 90), ("2h30m", 150),
                                               ("1H", 60), (" 45m ", 45)])
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration(text, units="hm") == timedelta(minutes=minutes)


def test_durations_are_described_as_written() -> None:
    assert parse_window("2026-06-01T01:00/90m").describe() == \
        f"2026-06-01 01:00{DASH}02:30 UTC (1h30m)"
    assert parse_window("2026-06-01T01:00/30h").describe() == \
        f"2026-06-01 01:00{DASH}2026-06-02 07:00 UTC (30h)"


def test_utc_is_the_default_zone() -> None:
    window = parse_window("2026-06-01T01:00/2h30m")
    assert window.start == utc(2026, 6, 1, 1, 0) and window.duration == timedelta(minutes=150)


def test_summer_time_is_taken_into_account() -> None:
    assert parse_window("2026-07-04T22:00/1h", "America/Chicago").start == utc(2026, 7, 5, 3, 0)
    assert parse_window("2026-07-04T22:00/1h", "Europe/Paris").start == utc(2026, 7, 4, 20, 0)


def test_a_local_time_skipped_by_the_clocks_going_forward() -> None:
    # 02:30 does not exist in Chicago on 2026-03-08; read with the offset before the change
    # (CST), it lands at 03:30 CDT.
    window = parse_window("2026-03-08T02:30/2h", "America/Chicago")
    assert window.start == utc(2026, 3, 8, 8, 30)
    assert window.local(window.start).strftime("%H:%M %Z") == "03:30 CDT"


def test_a_local_time_that_happens_twice_means_the_first() -> None:
    # 01:30 happens twice in Chicago on 2026-11-01; the first is still CDT (UTC-5).
    assert parse_window("2026-11-01T01:30/1h", "America/Chicago").start == utc(2026, 11, 1, 6, 30)


@pytest.mark.parametrize(("text", "tz", "message"), [
    ("tonight", "UTC", "expected YYYY-MM-DDTHH:MM/DURATION"),
    ("2026-11-28 22:00/4h", "UTC", "expected YYYY-MM-DDTHH:MM/DURATION"),
    ("2026-11-28T22:00", "UTC", "expected YYYY-MM-DDTHH:MM/DURATION"),
    ("2026-11-28T22:00/4 hours", "UTC", "expected hours and/or minutes like 4h, 90m or 2h30m"),
    ("2026-11-28T22:00/0h", "UTC", "empty window"),
    ("2026-02-30T22:00/4h", "UTC", "not a real date and time"),
    ("2026-11-28T25:00/4h", "UTC", "not a real date and time"),
    ("2026-11-28T22:00/4h", "Chicago", "unknown time zone 'Chicago': use an IANA name in "
                                       "Area/City form"),
    ("2026-11-28T22:00/4h", "../etc/passwd", "Area/City"),
])
def test_bad_windows_say_what_was_expected(text: str, tz: str, message: str) -> None:
    with pytest.raises(WindowError, match=message):
        parse_window(text, tz)


def test_a_window_needs_an_aware_start() -> None:
    with pytest.raises(WindowError, match="time zone"):
        Window(datetime(2026, 1, 1), timedelta(hours=1), "UTC")
    shifted = Window(datetime.fromisoformat("2026-01-01T10:00+02:00"), timedelta(hours=1), "UTC")
    assert shifted.start == utc(2026, 1, 1, 8, 0) and shifted.start.tzinfo is UTC


WINDOW = parse_window("2026-11-28T22:00/4h")


def test_a_run_starts_at_its_window_or_at_once_without_one() -> None:
    assert should_start(now=utc(2026, 11, 20), window=None)
    assert not should_start(now=utc(2026, 11, 28, 21, 59), window=WINDOW)
    assert should_start(now=utc(2026, 11, 28, 22, 0), window=WINDOW)
    assert should_start(now=utc(2026, 11, 29, 1, 0), window=WINDOW)  # approved inside it
    assert not should_start(now=utc(2026, 11, 29, 2, 0), window=WINDOW)  # over


def test_an_unapproved_plan_expires_when_the_window_no_longer_fits_it() -> None:
    two_hours = 2 * HOUR
    assert not expired_unapproved(now=utc(2026, 11, 28, 12), window=WINDOW, estimate_s=two_hours)
    assert not expired_unapproved(now=utc(2026, 11, 29, 0, 0), window=WINDOW,
                                  estimate_s=two_hours)  # ends exactly at the close
    assert expired_unapproved(now=utc(2026, 11, 29, 0, 1), window=WINDOW, estimate_s=two_hours)


def test_overrun_is_asked_for_once_the_finish_passes_the_window() -> None:
    now = utc(2026, 11, 29, 1, 0)
    assert predict_finish(now=now, remaining_s=HOUR) == utc(2026, 11, 29, 2, 0)
    assert not needs_overrun(now=now, remaining_s=HOUR, window=WINDOW, overrun_approved=False)
    assert needs_overrun(now=now, remaining_s=HOUR + 1, window=WINDOW, overrun_approved=False)
    assert not needs_overrun(now=now, remaining_s=5 * HOUR, window=WINDOW, overrun_approved=True)
    assert not needs_overrun(now=now, remaining_s=5 * HOUR, window=None, overrun_approved=False)


NOW = utc(2026, 11, 28, 23, 0)


def progress(key: str, status: StepStatus, estimate: float, *deps: str,
             kind: StepKind = StepKind.VERIFY,
             started_min_ago: float | None = None) -> StepProgress:
    started = NOW - timedelta(minutes=started_min_ago) if started_min_ago is not None else None
    return StepProgress(key=key, kind=kind, deps=deps, status=status, estimate_s=estimate,
                        started_at=started)


def test_the_time_left_counts_what_is_not_done() -> None:
    steps = [
        progress("upload:a", StepStatus.DONE, 600),
        progress("upload:b", StepStatus.SKIPPED, 600),
        # 10 of 40 minutes gone: 30 left.
        progress("install:a", StepStatus.ACTIVE, 2400, "upload:a", kind=StepKind.INSTALL,
                 started_min_ago=10),
        progress("install:b", StepStatus.PENDING, 1800, "upload:b", kind=StepKind.INSTALL),
        progress("join:b", StepStatus.PENDING, 600, "install:a", "install:b"),
    ]
    # Both installs run side by side: max(30, 30) min, then the join.
    assert remaining_seconds(now=NOW, steps=steps, history={},
                             max_parallel={StepKind.INSTALL: 3}) == 1800 + 600
    # One install at a time: 30 + 30 min, then the join.
    assert remaining_seconds(now=NOW, steps=steps, history={},
                             max_parallel={StepKind.INSTALL: 1}) == 3600 + 600


def test_a_step_past_its_estimate_still_counts_a_tenth_of_it() -> None:
    late = [progress("install:a", StepStatus.ACTIVE, 2400, kind=StepKind.INSTALL,
                     started_min_ago=55)]
    assert remaining_seconds(now=NOW, steps=late, history={}, max_parallel={}) == 240


def test_earlier_runs_replace_the_plan_estimate_by_their_median() -> None:
    steps = [progress("install:a", StepStatus.PENDING, 2400, kind=StepKind.INSTALL),
             progress("verify:a", StepStatus.PENDING, 60, "install:a")]
    history = {"install:a": [3000.0, 3600.0, 9000.0]}  # one slow outlier
    assert remaining_seconds(now=NOW, steps=steps, history=history, max_parallel={}) == 3660
    # An active step measures its elapsed time against the median, too.
    started = [progress("install:a", StepStatus.ACTIVE, 2400, kind=StepKind.INSTALL,
                        started_min_ago=50)]
    assert remaining_seconds(now=NOW, steps=started, history=history, max_parallel={}) == 600


def test_nothing_left_is_zero() -> None:
    done = [progress("final_check", StepStatus.DONE, 60)]
    assert remaining_seconds(now=NOW, steps=done, history={}, max_parallel={}) == 0
