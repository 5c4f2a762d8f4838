"""The planning modal through signed requests: opened by `/upgrade` and the Home tab, submitted
with field errors or into the same plan as the command; the Home tab's run buttons."""

from __future__ import annotations

import json
from typing import Any

from storage import repo
from storage.db import unit_of_work
from tests.support.signing import event_body, home_action_body, view_submission_body
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, VISITOR, Workspace


def opened(ws: Workspace) -> dict[str, Any]:
    """The modal the last views.open opened (with the trigger_id Slack sent)."""
    call = ws.slack.calls_to("views.open")[-1]
    assert call.outcome == "ok" and call.args["trigger_id"]
    return ws.slack.view(ws.slack.opened_views()[-1])


def submit(ws: Workspace, view: dict[str, Any], user: str = OPERATOR,
           **values: str | None) -> dict[str, Any]:
    """Submit the modal with these values; return the ack's body."""
    response = ws.dispatch(view_submission_body(user=user, view=view, values=values))
    assert response.status == 200
    return json.loads(response.body) if response.body else {}


def options(view: dict[str, Any], block_id: str) -> list[str]:
    element = next(b for b in view["blocks"] if b.get("block_id") == block_id)["element"]
    groups = element.get("option_groups") or [{"options": element.get("options", [])}]
    return [o["value"] for g in groups for o in g["options"]]


def test_no_words_opens_the_modal_for_operators_and_help_for_others(ws: Workspace) -> None:
    reply = ws.command("")
    assert reply.status == 200 and not reply.texts()
    view = opened(ws)
    assert view["type"] == "modal" and view["callback_id"] == "plan_modal"
    # Targets from the inventory, versions from the configured packages.
    assert options(view, "target") == ["global", "dallas", "denver", "lab"]
    assert options(view, "version") == ["10.0.0.4", "10.1.0.1"]
    assert options(view, "strategy") == ["auto", "basic", "full-outage", "incremental"]
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {"window_start", "window_length", "tz"} <= blocks
    assert "channel" not in blocks  # the configuration names the channel

    # A reader gets the help instead; no modal.
    visitor = ws.command("", user=VISITOR)
    assert "/upgrade plan TARGET VERSION" in visitor.texts()[0]
    assert len(ws.slack.calls_to("views.open")) == 1


def test_each_bad_field_is_refused_beside_it_and_nothing_is_planned(ws: Workspace) -> None:
    ws.command("")
    view = opened(ws)
    answer = submit(ws, view, target="globl", version="10.x", strategy="auto",
                    window_start="2026-11-28T22:00", window_length=None, tz="Mars/Olympus")
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert set(errors) == {"target", "version", "window_length", "tz"}
    assert "did you mean 'global'?" in errors["target"]
    assert "10.x" in errors["version"]
    assert errors["window_length"] == "give the window's length too, e.g. 4h"
    assert "Area/City" in errors["tz"]
    assert all(len(e) <= 150 for e in errors.values())

    answer = submit(ws, view, target="lab", version="10.1.0.1", strategy="auto",
                    window_start="2026-13-01T22:00", window_length="0m", tz="UTC")
    assert set(answer["errors"]) == {"window_start", "window_length"}
    assert answer["errors"]["window_start"].startswith("'2026-13-01T22:00' is not a real date")
    assert "empty window" in answer["errors"]["window_length"]
    assert ws.services.active_runs() == []


def test_a_submission_makes_the_same_plan_as_the_command(ws: Workspace) -> None:
    ws.command("")
    view = opened(ws)
    answer = submit(ws, view, target="lab", version="10.1.0.1", strategy="auto",
                    window_start="2026-11-28T22:00", window_length="4h", tz="America/Chicago")
    assert answer["response_action"] == "update"
    assert "Reading the clusters" in json.dumps(answer["view"], ensure_ascii=False)

    # The modal then says where the plan went; the plan is in the channel for approval.
    shown = ws.slack.view(view["id"])
    assert "R1 posted in <#C0UPGRADES>" in json.dumps(shown, ensure_ascii=False)
    ws.deliver()
    message = ws.plan_message("R1")["text"]
    assert message.startswith("*R1* — upgrade plan for cluster *lab*")
    assert "Approvals: 0 of 2" in message

    # The same plan as `/upgrade plan lab 10.1.0.1 window=… tz=…`: same digest, same window.
    run = ws.run("R1")
    assert (run.target, run.to_version, run.requester) == ("lab", "10.1.0.1", OPERATOR)
    assert run.window == "2026-11-28 22:00\u201302:00 America/Chicago (4h)"
    with unit_of_work(ws.sessions) as session:
        stored = repo.get_run(session=session, ref="R1")
        assert stored is not None
        assert stored.plan_digest == ws.services.plan("lab", "10.1.0.1").digest


def test_a_refusal_after_reading_the_clusters_brings_the_form_back(ws: Workspace) -> None:
    ws.command("")
    view = opened(ws)
    submit(ws, view, target="global", version="10.1.0.1", strategy="basic",
           window_start=None, window_length=None, tz="UTC")
    shown = ws.slack.view(view["id"])
    text = json.dumps(shown, ensure_ascii=False)
    assert shown["callback_id"] == "plan_modal" and "⚠️ basic cannot upgrade global" in text
    target = next(b for b in shown["blocks"] if b.get("block_id") == "target")
    assert target["element"]["initial_option"]["value"] == "global"  # the values are kept
    assert ws.services.active_runs() == []


def open_home(ws: Workspace, user: str) -> dict[str, Any]:
    event = {"type": "app_home_opened", "user": user, "tab": "home", "event_ts": "1.2"}
    ws.dispatch(event_body(event, event_id=f"EvHome{user}{len(ws.slack.calls)}", event_time=0))
    view = ws.slack.home_view(user)
    assert view is not None
    return view


def home_buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action_id"], e["value"]) for b in view["blocks"] if b["type"] == "actions"
            for e in b["elements"]]


def test_the_home_tab_plans_and_lists_active_runs_with_their_buttons(ws: Workspace) -> None:
    assert home_buttons(open_home(ws, VISITOR)) == []
    assert home_buttons(open_home(ws, OPERATOR)) == [("planner_open", "plan")]

    # The Home tab's button opens the same modal.
    ws.dispatch(home_action_body(user=OPERATOR, action_id="planner_open", value="plan"))
    view = opened(ws)
    assert view["callback_id"] == "plan_modal"
    submit(ws, view, target="lab", version="10.1.0.1", strategy="auto", window_start=None,
           window_length=None, tz=None)
    ws.deliver()

    # The plan awaiting approval shows its approval buttons to approvers, none to readers.
    assert ("plan_approve", "R1") in home_buttons(open_home(ws, APPROVERS[0]))
    assert home_buttons(open_home(ws, VISITOR)) == []
    ws.dispatch(home_action_body(user=APPROVERS[0], action_id="plan_approve", value="R1"))
    home = json.dumps(ws.slack.home_view(APPROVERS[0]), ensure_ascii=False)
    assert "R1: approval counted (1 of 2)" in home

    # Once running and paused, operators get the board's buttons there.
    ws.dispatch(home_action_body(user=APPROVERS[1], action_id="plan_approve", value="R1"))
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.command("pause R1")
    assert {("run_resume", "R1"), ("run_abort", "R1")} <= set(
        home_buttons(open_home(ws, OPERATOR)))
    assert ws.slack.messages(CHANNEL)[0]["ts"] == ws.plan_ts()
