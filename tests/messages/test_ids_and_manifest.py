"""manifest.yml is a valid Slack app manifest that declares exactly the surface the code uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bot.messages.ids import BOT_SCOPES, EVENTS, MAX_ID, SLASH_COMMAND, ActionId, RunRef

ROOT = Path(__file__).resolve().parents[2]
# SchemaStore's Slack app manifest schema, carried with the tests so the check always runs.
SCHEMA = ROOT / "tests" / "fixtures" / "slack-app-manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


def test_manifest_validates_against_slacks_schema(manifest: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(manifest, schema)


def test_the_schema_would_refuse_a_broken_manifest(manifest: dict[str, Any]) -> None:
    # The check above is only worth something if the schema can say no.
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {**manifest, "display_information": {}}  # no app name
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_manifest_declares_what_the_code_uses(manifest: dict[str, Any]) -> None:
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == SLASH_COMMAND
    assert tuple(manifest["settings"]["event_subscriptions"]["bot_events"]) == EVENTS
    assert tuple(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    # app_home_opened is only worth subscribing to with a Home tab to show.
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_every_request_url_points_at_slack_events(manifest: dict[str, Any]) -> None:
    urls = [
        manifest["features"]["slash_commands"][0]["url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
    ]
    assert all(url.startswith("https://") and url.endswith("/slack/events") for url in urls), urls
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_action_ids_are_distinct() -> None:
    values = [a.value for a in ActionId]
    assert len(set(values)) == len(values)


@given(st.integers(min_value=1, max_value=MAX_ID), st.none() | st.integers(1, MAX_ID))
def test_run_ref_round_trips_through_a_button_value(run_id: int, step_id: int | None) -> None:
    ref = RunRef(run_id, step_id)
    assert RunRef.decode(ref.encode()) == ref
    assert len(ref.encode()) <= 2000  # Slack's limit on a button value


@pytest.mark.parametrize("value", ["R1000000000", "R" + "9" * 1990, "R1/S1000000000"])
def test_run_ref_refuses_ids_that_no_run_can_have(value: str) -> None:
    with pytest.raises(ValueError):
        RunRef.decode(value)
    with pytest.raises(ValueError):
        RunRef(MAX_ID + 1)


def test_run_ref_reads_like_run_names() -> None:
    assert RunRef(12).encode() == "R12"
    assert RunRef(12, 3).encode() == "R12/S3"


@pytest.mark.parametrize("value", ["", "12", "R", "R0", "R012", "R1/S", "R1/S0", "r1", "R1/S2/S3"])
def test_run_ref_refuses_values_it_did_not_make(value: str) -> None:
    with pytest.raises(ValueError, match="not a run reference"):
        RunRef.decode(value)


def test_run_ref_refuses_ids_that_are_not_positive() -> None:
    with pytest.raises(ValueError, match="run_id"):
        RunRef(0)
    with pytest.raises(ValueError, match="step_id"):
        RunRef(1, -2)
