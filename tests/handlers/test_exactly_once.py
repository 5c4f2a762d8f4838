"""Exactly-once effects of what Slack sends: an event's id is recorded with its effect (a failed
listener lets Slack's retry through), a replayed command or click changes nothing, and a button
counts only for the run whose message it is on."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy.exc import OperationalError

from storage import repo
from tests.support.signing import block_action_body, slash_command_payload
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, Workspace


def test_a_listener_that_fails_lets_slacks_retry_count(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    ws.command("plan lab 10.1.0.1")
    real_audit = repo.audit
    failures: list[dict[str, Any]] = []

    def audit_failing_once(**kwargs: Any) -> Any:
        if not failures:
            failures.append(kwargs)
            raise OperationalError("INSERT INTO audit", {}, Exception("database is locked"))
        return real_audit(**kwargs)

    monkeypatch.setattr(repo, "audit", audit_failing_once)

    # The first delivery fails half-way: nothing of it stays, not even its event id.
    ws.react(APPROVERS[0], event_id="EvFLAKY")
    assert failures and ws.services.approvals("R1") == []
    [told] = ws.private(APPROVERS[0])  # privately, by chat.postEphemeral (no response_url)
    assert told.startswith("💥 Something went wrong on the bot's side (incident ")
    # Slack retries the same event: now it counts, once.
    ws.react(APPROVERS[0], event_id="EvFLAKY", retry=1)
    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]
    # A further retry of the event that took effect is dropped.
    ws.react(APPROVERS[0], event_id="EvFLAKY", retry=2)
    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]


def running(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.click("plan_approve", user=APPROVERS[0])
    ws.click("plan_approve", user=APPROVERS[1])
    ws.acknowledge()  # the guide's manual checklist, before the start
    assert ws.run().status == "running"


def test_a_replayed_command_changes_nothing(ws: Workspace) -> None:
    running(ws)
    ws.command("pause R1")
    resume = urlencode(slash_command_payload("resume R1", user_id=OPERATOR, channel_id=CHANNEL,
                                             response_url=ws.slack.response_url("resume")))
    stamp = int(time.time())
    assert ws.dispatch(resume, timestamp=stamp).status == 200
    assert ws.run().status == "running"
    ws.command("pause R1")
    assert ws.run().status == "paused"

    replay = ws.dispatch(resume, timestamp=stamp)  # the very same signed request, again
    assert replay.status == 200 and "already handled" in replay.body
    assert ws.run().status == "paused"


def test_a_replayed_click_changes_nothing(ws: Workspace) -> None:
    running(ws)
    ws.command("pause R1")
    click = block_action_body(user=OPERATOR, channel=CHANNEL, message_ts=ws.plan_ts(),
                              action_id="run_resume", value="R1",
                              response_url=ws.slack.response_url("click"))
    stamp = int(time.time())
    ws.dispatch(click, timestamp=stamp)
    assert ws.run().status == "running"
    ws.command("pause R1")

    assert ws.dispatch(click, timestamp=stamp).status == 200
    assert ws.run().status == "paused"
    assert len(ws.slack.responses_posted("click")) == 1  # the replay got no second answer


def test_a_button_counts_only_for_the_run_whose_message_it_is_on(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.command("plan global 10.0.0.4")
    r1_plan = ws.plan_ts("R1")

    forged = ws.click("plan_approve", user=APPROVERS[0], run="R2", message_ts=r1_plan)
    assert forged.responses[-1]["text"] == (
        "⚠️ this button does not belong to R2's messages; nothing was done")
    assert ws.services.approvals("R2") == [] and ws.services.approvals("R1") == []

    honest = ws.click("plan_approve", user=APPROVERS[0], run="R2")
    assert "approval counted (1 of 2)" in honest.responses[-1]["text"]
    assert ws.services.approvals("R2") == [(APPROVERS[0], "button")]
