"""The configuration's duration grammar: what it accepts, what it refuses, how it spells back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from bot.engine.durations import DurationError, parse_duration, say_duration, spell_duration
from bot.engine.errors import UserError


@pytest.mark.parametrize(("value", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("1h", timedelta(hours=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1h 30m 5s", timedelta(hours=1, minutes=30, seconds=5)),
    ("90", timedelta(seconds=90)),
    (90, timedelta(seconds=90)),
    (2.5, timedelta(seconds=2.5)),
    ("0.2s", timedelta(milliseconds=200)),
    (" 2M ", timedelta(minutes=2)),
    ("1.5h", timedelta(minutes=90)),
])
def test_parse_duration_accepts_the_documented_spellings(value, expected):
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "", "5x", "1m1h", "-5s", -1, True, float("nan"), "1e3",
                                   10**30])
def test_parse_duration_says_what_it_expected(value):
    with pytest.raises(ValueError, match="expected a duration like 30s, 5m, 1h or a number of "
                                         "seconds, got"):
        parse_duration(value)


@hsettings(database=None, deadline=None)
@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["s", "m", "h"]))
def test_n_units_parse_to_that_many_units_and_format_back(n, unit):
    seconds = {"s": 1, "m": 60, "h": 3600}[unit] * n
    parsed = parse_duration(f"{n}{unit}")
    assert parsed == timedelta(seconds=seconds)
    assert parse_duration(spell_duration(parsed)) == parsed


@hsettings(database=None, deadline=None)
@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10**5)))
def test_spell_duration_round_trips_to_the_microsecond(value):
    assert parse_duration(spell_duration(value)) == value


def test_spell_duration_spells_like_the_file():
    assert [spell_duration(timedelta(seconds=s)) for s in (0, 0.2, 30, 90, 5400, 3600)] == \
        ["0s", "0.2s", "30s", "1m30s", "1h30m", "1h"]


def test_a_duration_error_is_a_user_error_and_a_value_error():
    with pytest.raises(DurationError) as caught:
        parse_duration("soon")
    assert isinstance(caught.value, UserError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == ("expected a duration like 30s, 5m, 1h or a number of seconds, "
                                 "got 'soon'")
    with pytest.raises(DurationError, match=r"got 1000000000000000000000000000000, which is too "
                                            r"long$"):
        parse_duration(10**30)


@pytest.mark.parametrize(("seconds", "said"), [
    (0, "0 s"), (40.4, "40 s"), (59.4, "59 s"), (60, "1 min"), (35 * 60, "35 min"),
    (3600, "1 h"), (95 * 60, "1 h 35 min"), (2 * 3600 + 5 * 60, "2 h 05 min"), (-5, "0 s")])
def test_messages_say_durations_the_way_people_do(seconds: float, said: str) -> None:
    assert say_duration(seconds) == said


@pytest.mark.parametrize("text", ["90", "30s", "1h30s", "4 hours", "", "h"])
def test_a_window_length_takes_hours_and_minutes_with_their_unit(text: str) -> None:
    with pytest.raises(DurationError, match="expected hours and/or minutes like 4h, 90m"):
        parse_duration(text, units="hm")
    assert parse_duration("1h30m", units="hm") == timedelta(minutes=90)
