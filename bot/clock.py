"""Injected time: every component asks a Clock, never the datetime module directly."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the time as a timezone-aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current time (UTC, timezone-aware)."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the current fake time."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move time forward by a timedelta or a number of seconds."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to a given time (never backwards)."""
        with self._lock:
            if when > self._now:
                self._now = when
