"""Durations as people write and read them: the project's one module for spelling time spans.

One grammar: "30s", "5m", "1h", "1h30m", "0.2s" or (where allowed) a number of seconds.
`parse_duration` reads it (a maintenance window's length allows only hours and minutes);
`spell_duration` writes it back the same way, so a dumped configuration loads back unchanged and
a window is described as it was written; `say_duration` says a span the way people do in
messages ("1 h 35 min"). Pure: no I/O, nothing outside the engine.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from bot.engine.errors import UserError

# Microseconds per unit: a timedelta is exact in microseconds, and so is every duration here.
_MICROS = {"h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000}

# What each set of units expects, in the words of the error message.
_EXPECTED = {"hms": "expected a duration like 30s, 5m, 1h or a number of seconds",
             "hm": "expected hours and/or minutes like 4h, 90m or 2h30m"}
_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER_RE = re.compile(_NUM)
_DURATION_RE = {
    "hms": re.compile(rf"(?:(?P<h>{_NUM})\s*h)?\s*(?:(?P<m>{_NUM})\s*m)?\s*"
                      rf"(?:(?P<s>{_NUM})\s*s)?"),
    "hm": re.compile(rf"(?:(?P<h>{_NUM})\s*h)?\s*(?:(?P<m>{_NUM})\s*m)?"),
}


class DurationError(UserError, ValueError):
    """A duration that does not follow the grammar; the message says what was expected.

    A ValueError too, so that a pydantic validator reports it as the value's problem.
    """

    def __init__(self, given: str, why: str = "", units: str = "hms") -> None:
        """Say what was expected and what was given (`given` is already rendered for a reader)."""
        super().__init__(f"{_EXPECTED[units]}, got {given}{why}")
        self.given = given


# ------------------------------------------------------------------ the configuration's grammar


def parse_duration(value: str | int | float, *, units: str = "hms") -> timedelta:
    """Parse "30s", "5m", "1h", "1h30m", "0.2s" or a number of seconds into a timedelta.

    `units="hm"` allows hours and minutes only, always with their unit ("4h", "90m", "2h30m"):
    the length of a maintenance window.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float) or (
            units != "hms" and not isinstance(value, str)):
        raise DurationError(_brief(value), units=units)
    if isinstance(value, str):
        micros = _micros_of_text(value, units)
    elif not math.isfinite(value) or value < 0:
        raise DurationError(_brief(value))
    else:
        # str() gives the shortest exact spelling of a float, so 0.2 stays 0.2 and not 0.2000...01
        micros = Decimal(str(value)) * _MICROS["s"]
    try:
        return timedelta(microseconds=int(micros.to_integral_value(ROUND_HALF_EVEN)))
    except OverflowError:
        raise DurationError(_brief(value), ", which is too long") from None


def spell_duration(value: timedelta) -> str:
    """Spell a timedelta the way the configuration file does: "1h30m", "30s", "0.2s"."""
    micros = value // timedelta(microseconds=1)
    sign, micros = ("-" if micros < 0 else ""), abs(micros)
    hours, micros = divmod(micros, _MICROS["h"])
    minutes, micros = divmod(micros, _MICROS["m"])
    parts = [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes)
    if micros or not parts:
        parts.append(f"{format((Decimal(micros) / _MICROS['s']).normalize(), 'f')}s")
    return sign + "".join(parts)


def say_duration(seconds: float) -> str:
    """Say a duration the way people do in a message: '1 h 35 min', '35 min', '40 s'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{round(seconds)} s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours == 0:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _micros_of_text(value: str, units: str) -> Decimal:
    text = value.strip().lower()
    if units == "hms" and _NUMBER_RE.fullmatch(text):
        return Decimal(text) * _MICROS["s"]
    match = _DURATION_RE[units].fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        raise DurationError(_brief(value), units=units)
    return sum((Decimal(n) * _MICROS[unit] for unit, n in match.groupdict().items() if n),
               Decimal(0))


def _brief(value: object) -> str:
    """Render what a person gave briefly, as YAML would spell it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
