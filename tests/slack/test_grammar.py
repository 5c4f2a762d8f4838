"""The /upgrade grammar: every subcommand parses into its typed request; mistakes say what was
expected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.engine.planner import Strategy
from bot.engine.windows import WindowError
from bot.slack import grammar
from bot.slack.grammar import (
    ControlRequest,
    EvidenceRequest,
    HelpRequest,
    HistoryRequest,
    InventoryRequest,
    PlanRequest,
    StatusRequest,
    UsageError,
    VerifyRequest,
    parse,
    subcommand,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("", HelpRequest()),
    ("help", HelpRequest()),
    ("  HELP ", HelpRequest()),
    ("inventory", InventoryRequest()),
    ("status", StatusRequest()),
    ("status R12", StatusRequest("R12")),
    ("status 12", StatusRequest("R12")),
    ("pause r3", ControlRequest("pause", "R3")),
    ("resume R3", ControlRequest("resume", "R3")),
    ("abort R3", ControlRequest("abort", "R3")),
    ("retry R3", ControlRequest("retry", "R3")),
    ("history", HistoryRequest()),
    ("history global", HistoryRequest("global")),
    ("verify global", VerifyRequest("global")),
    ("evidence r7", EvidenceRequest("R7")),
    ("plan global 10.1.0.1", PlanRequest("global", "10.1.0.1")),
    ("plan lab 6.0.1J strategy=basic", PlanRequest("lab", "6.0.1J", Strategy.BASIC)),
    ("plan global 10.1.0.1 strategy=Incremental", PlanRequest("global", "10.1.0.1",
                                                              Strategy.INCREMENTAL)),
])
def test_each_subcommand_parses_into_its_request(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_a_window_is_read_in_the_requested_time_zone_whatever_the_order_of_options() -> None:
    request = parse("plan global 10.1.0.1 tz=America/Chicago window=2026-11-28T22:00/4h "
                    "strategy=full-outage")
    assert isinstance(request, PlanRequest)
    assert request.strategy is Strategy.FULL_OUTAGE
    assert request.window is not None
    # 22:00 in Chicago (CST, UTC-6) is 04:00 UTC the next day.
    assert request.window.start == datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
    assert request.window.duration == timedelta(hours=4)
    assert request.window.tz == "America/Chicago"


def test_a_window_without_tz_is_utc() -> None:
    request = parse("plan lab 10.1.0.1 window=2026-11-28T22:00/90m")
    assert isinstance(request, PlanRequest) and request.window is not None
    assert request.window.start == datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    assert request.window.tz == "UTC"


@pytest.mark.parametrize(("text", "says"), [
    ("stats", "Did you mean `status`?"),
    ("deploy lab", "unknown subcommand `deploy`"),
    ("plan", "`plan` expects a TARGET and a VERSION"),
    ("plan global", "`plan` expects a TARGET and a VERSION"),
    ("plan global 10.1.0.1 extra", "`plan` expects a TARGET and a VERSION"),
    ("plan global 10.1", "is not a DMA version"),
    ("plan global 10.1.0.1 strategy=fast", "unknown strategy `fast`; expected one of: auto"),
    ("plan global 10.1.0.1 stratgy=basic", "did you mean `strategy=`?"),
    ("plan global 10.1.0.1 strategy=basic strategy=auto", "given twice"),
    ("plan global 10.1.0.1 tz=Europe/Paris", "`tz=` only applies to a window"),
    ("pause", "expects one RUN (got nothing)"),
    ("abort R1 R2", "expects one RUN"),
    ("abort global", "`global` is not a run: runs are named R1, R2"),
    ("status R0", "is not a run"),
    ("history global lab", "at most one TARGET"),
    ("inventory now", "`inventory` takes nothing more"),
    ("verify", "`verify` expects one TARGET (got nothing): `/upgrade verify TARGET`"),
    ("verify global lab", "expects one TARGET"),
    ("evidence global", "`global` is not a run"),
    ("evidense R1", "Did you mean `evidence`?"),
])
def test_mistakes_say_what_was_expected(text: str, says: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(text)
    assert says in str(info.value)


@pytest.mark.parametrize(("text", "says"), [
    ("plan global 10.1.0.1 window=tomorrow", "is not a window: expected YYYY-MM-DDTHH:MM"),
    ("plan global 10.1.0.1 window=2026-11-28T22:00/4h tz=Chicago", "unknown time zone"),
    ("plan global 10.1.0.1 window=2026-02-30T22:00/4h", "not a real date"),
])
def test_bad_windows_and_zones_say_what_was_expected(text: str, says: str) -> None:
    with pytest.raises(WindowError, match=says):
        parse(text)


def test_subcommand_is_the_first_word_lowercased() -> None:
    assert subcommand("  PLAN global 10.1.0.1") == "plan"
    assert subcommand("") == ""


def test_recovery_subcommands_parse_and_say_what_is_expected() -> None:
    assert grammar.parse("rollback r3 denver") == grammar.RollbackRequest("R3", "denver")
    assert grammar.parse("restore R3") == grammar.RestoreRequest("R3")
    assert grammar.parse("retry R3 reinstall") == grammar.ControlRequest("reinstall", "R3")
    with pytest.raises(grammar.UsageError, match="expects a RUN and a CLUSTER"):
        grammar.parse("rollback R3")
    with pytest.raises(grammar.UsageError, match="not a run"):
        grammar.parse("restore denver")
    with pytest.raises(grammar.UsageError, match="unknown strategy `rollback`"):
        grammar.parse("plan global 10.1.0.1 strategy=rollback")
    assert {"rollback", "restore"} <= grammar.MUTATING
