"""A fake clock's advance, typed as the `pause` staging takes."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import FakeClock


def pause_on(clock: FakeClock) -> Callable[[float], None]:
    """Wait `seconds` by moving the fake clock on that far (`advance`, its new time dropped)."""

    def pause(seconds: float) -> None:
        clock.advance(seconds)

    return pause
