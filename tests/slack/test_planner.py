"""The planning modal's field checks and choices, without Slack: the command's rules, per field."""

from __future__ import annotations

import json
from pathlib import Path

from bot.config import load_settings
from bot.slack.planner import channel_of, check, planning_view, submitted, target_choices

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETTINGS = load_settings(FIXTURES / "supercluster.yml")  # no slack.channel configured
GOOD = {"target": "global", "version": "10.1.0.1", "strategy": "full-outage",
        "window_start": "2026-11-28T22:00", "window_length": "4h", "tz": "America/Chicago"}


def test_targets_are_grouped_as_the_inventory() -> None:
    groups = target_choices(SETTINGS)
    assert [label for label, _ in groups] == ["Supercluster global", "Stand-alone clusters"]
    assert [v for v, _ in groups[0][1]] == ["global", "dallas", "denver", "austin"]
    assert groups[1][1] == [("lab", "lab (stand-alone)")]


def test_a_good_form_becomes_what_the_command_would_have_parsed() -> None:
    form, errors = check(GOOD, SETTINGS, "C0HERE")
    assert errors == {} and form is not None
    assert (form.target, form.version, form.strategy.value, form.channel) == (
        "global", "10.1.0.1", "full-outage", "C0HERE")
    assert form.window is not None and form.window.tz == "America/Chicago"
    assert form.window.start.isoformat() == "2026-11-29T04:00:00+00:00"  # 22:00 CST
    # No window at all is fine (tz alone is ignored, as it has a default).
    form, errors = check({**GOOD, "window_start": "", "window_length": ""}, SETTINGS, "C1")
    assert errors == {} and form is not None and form.window is None


def test_each_field_says_what_was_expected() -> None:
    _, errors = check({"target": "", "version": "ten", "strategy": "fast",
                       "window_start": "", "window_length": "4h", "tz": "Nowhere"},
                      SETTINGS, None)
    assert set(errors) == {"target", "version", "strategy", "window_start", "tz", "channel"}
    assert errors["window_start"] == "give the window's start too, e.g. 2026-11-28T22:00"
    assert errors["channel"] == "choose the channel where the plan is posted"
    assert "'fast'" in errors["strategy"]


def test_the_modal_asks_for_a_channel_only_when_none_is_known() -> None:
    view = planning_view(SETTINGS, channel=None)
    assert any(b.get("block_id") == "channel" for b in view["blocks"])
    assert channel_of(view) is None
    view = planning_view(SETTINGS, channel="C0HERE")
    assert not any(b.get("block_id") == "channel" for b in view["blocks"])
    assert channel_of(view) == "C0HERE"
    assert channel_of({"private_metadata": "not json"}) is None
    assert json.loads(view["private_metadata"]) == {"channel": "C0HERE"}


def test_a_submission_is_read_field_by_field() -> None:
    view = {"state": {"values": {
        "target": {"target": {"type": "static_select", "selected_option": {"value": "lab"}}},
        "tz": {"tz": {"type": "plain_text_input", "value": "  UTC "}},
        "channel": {"channel": {"type": "conversations_select",
                                "selected_conversation": "C0X"}},
        "window_start": {"window_start": {"type": "plain_text_input", "value": None}}}}}
    values = submitted(view)
    assert (values["target"], values["tz"], values["channel"]) == ("lab", "UTC", "C0X")
    assert values["window_start"] == "" and values["version"] == ""
