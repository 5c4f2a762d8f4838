"""Buttons: approval buttons for approvers, run controls for operators, refusals in private."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storage import repo
from storage.db import unit_of_work
from tests.support.workspace import (
    APPROVERS,
    ONCALL,
    OPERATOR,
    VISITOR,
    Workspace,
    block_text,
    buttons_of,
    workspace,
)


def test_approve_and_reject_buttons_count_like_reactions(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()

    assert ws.click("plan_approve", user=OPERATOR).responses[0]["text"] == (
        "R1: not counted — the requester's own approval does not count.")
    assert ws.click("plan_approve", user=VISITOR).responses[0]["text"] == (
        "R1: not counted — only configured approvers can approve.")
    counted = ws.click("plan_approve", user=APPROVERS[0]).responses[0]
    assert counted == {"text": "R1: approval counted (1 of 2); the run is awaiting approval.",
                       "response_type": "ephemeral", "replace_original": False}
    assert ws.services.approvals("R1") == [(APPROVERS[0], "button")]

    assert ws.click("plan_reject", user=APPROVERS[1]).responses[0]["text"] == "R1 rejected."
    ws.deliver()
    assert ws.run().status == "rejected"
    assert buttons_of(ws.plan_message()) == {}


def test_a_button_that_names_no_run_is_answered_not_obeyed(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    reply = ws.click("plan_approve", user=APPROVERS[0], value="R1; DROP TABLE runs")

    assert reply.status == 200
    assert reply.responses[0]["text"] == "⚠️ this button does not name a run any more"
    assert ws.services.approvals("R1") == []


@pytest.mark.slow
def test_an_escalation_reaches_the_thread_pauses_the_run_and_only_operators_retry(
        tmp_path: Path) -> None:
    with workspace(tmp_path, faults=["denver=one-server"]) as ws:
        ws.command("plan global 10.0.0.4")
        ws.acknowledge()  # an operator acknowledges the checklist
        ws.click("plan_approve", user=APPROVERS[0])
        ws.click("plan_approve", user=APPROVERS[1])
        assert ws.drive("R1") == "escalated"

        [prompt] = [m for m in ws.slack.thread("C0UPGRADES", ws.plan_ts())
                    if "escalation on" in m["text"]]
        blocks = block_text(prompt)
        # Whom to call, the vendor's words, the cluster, each server, times, what was done,
        # the on-call group, and the two buttons.
        for words in ("Polycom Global Services, +1 800 765 9266", "<!subteam^S0ONCALL>",
                      "Vendor condition", "only one server", "denver",
                      "server 1 denver-a", "server 2 denver-b", "DOWN", "install estimate",
                      "waited", "Already done", "Install 10.0.0.4 on denver"):
            assert words in blocks, words
        escalated = next(s for s in ws.services.run_status("R1")[1] if s[1] == "escalated")
        assert escalated[0] == "verify:denver"
        rollback_ref = buttons_of(prompt).pop("run_rollback")
        assert buttons_of(prompt) == {"escalation_ack": "R1", "run_retry": "R1",
                                      "run_abort": "R1", "run_rollback": rollback_ref}
        assert rollback_ref.startswith("R1/S") and "Roll back denver" in blocks
        assert "Retry verification" in blocks
        # The service impact at this moment, and the ways on.
        for words in ("Out of service: denver", "/upgrade rollback R1 denver",
                      "/upgrade restore R1"):
            assert words in prompt["text"], words
        # Broadcast: the channel shows the packet too, beside the board.
        assert [m["ts"] for m in ws.slack.messages("C0UPGRADES")] == [ws.plan_ts(),
                                                                        prompt["ts"]]
        acknowledge_and_reminders(ws, escalated_at=ws.clock.now())

        # Roll back denver: an operator's click posts the rollback plan, linked to R1.
        assert "only operators" in ws.click("run_rollback", user=VISITOR,
                                            value=rollback_ref).responses[0]["text"]
        posted = ws.click("run_rollback", user=OPERATOR, value=rollback_ref).responses[0]
        assert posted["text"].startswith("R2 posted in <#C0UPGRADES>: denver → 10.0.0.3")
        assert ws.services.summary("R2").status == "awaiting_approval"
        assert ws.run().status == "escalated" and ws.run().pause_reason
        # The status board shows the escalation too, with the same choices.
        board = ws.plan_message()
        assert "escalated" in board["text"] and buttons_of(board) == {
            "run_retry": "R1", "run_abort": "R1"}

        # A non-operator's click is refused in private; nothing changes.
        refused = ws.click("run_retry", user=APPROVERS[0])
        assert refused.status == 200
        assert "only operators may do that" in refused.responses[0]["text"]
        assert refused.responses[0]["response_type"] == "ephemeral"
        assert ws.run().status == "escalated"

        # While the rollback plan R2 (recovering R1) is open, R1 may not move denver too.
        busy = ws.click("run_retry", user=OPERATOR).responses[0]["text"]
        assert "R2 (rollback of denver) recovers R1 and is awaiting approval" in busy
        ws.services.control("R2", "abort", OPERATOR)

        # The second server is back; an operator retries and the run completes.
        ws.sim.clear_faults("denver")
        assert ws.click("run_retry", user=OPERATOR).responses[0]["text"] == (
            "R1: verifying again")
        assert ws.drive("R1") == "completed"


def reminders(ws: Workspace) -> list[str]:
    return [t for t in ws.thread() if t.startswith("🔔")]


def acknowledge_and_reminders(ws: Workspace, *, escalated_at: datetime) -> None:
    """Until someone acknowledges, the on-call group is mentioned again every 15 minutes."""
    ws.clock.set(escalated_at + timedelta(minutes=14, seconds=59))
    ws.tick()
    assert reminders(ws) == []
    ws.clock.set(escalated_at + timedelta(minutes=15))
    ws.tick()
    ws.tick()  # a second pass in the same minute adds nothing
    assert reminders(ws) == ["🔔 R1 — the escalation on *denver* is not acknowledged after "
                             "15 min: <!subteam^S0ONCALL>, call Polycom Global Services, "
                             "+1 800 765 9266 and press Acknowledge."]
    ws.clock.set(escalated_at + timedelta(minutes=30))
    ws.tick()
    assert len(reminders(ws)) == 2 and "after 30 min" in reminders(ws)[1]
    assert "NOT acknowledged yet" in ws.plan_message()["text"]

    # Someone outside on-call, operators and approvers may not acknowledge; on-call may.
    refused = ws.click("escalation_ack", user=VISITOR).responses[0]["text"]
    assert "only the on-call group, operators and approvers" in refused
    answer = ws.click("escalation_ack", user=ONCALL[0]).responses[0]["text"]
    assert answer.startswith("R1: escalation on denver acknowledged")
    ws.deliver()
    local = (escalated_at + timedelta(minutes=30)).astimezone(ZoneInfo("UTC"))
    assert ws.thread()[-1] == (f"👀 R1 — escalation on *denver* acknowledged by "
                               f"<@{ONCALL[0]}> at {local:%H:%M} UTC.")
    board = ws.plan_message()["text"]
    assert f"acknowledged by <@{ONCALL[0]}> at {local:%H:%M} UTC" in board
    assert f"Approved by <@{APPROVERS[0]}> (" in board and f"<@{APPROVERS[1]}> (" in board
    with unit_of_work(ws.sessions) as session:
        trail = [(a.actor, a.action) for a in repo.audit_trail(session=session, run_id=1)]
    assert (ONCALL[0], "escalation.acknowledged") in trail
    assert trail.count(("system", "escalation.renotified")) == 2

    # Acknowledged: no more reminders, however long it takes.
    ws.clock.set(escalated_at + timedelta(hours=2))
    ws.tick()
    assert len(reminders(ws)) == 2
    again = ws.click("escalation_ack", user=OPERATOR).responses[0]["text"]
    assert again == f"R1: already acknowledged by <@{ONCALL[0]}>"


def test_abort_button_on_the_board_is_for_operators(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.click("plan_approve", user=APPROVERS[0])
    ws.click("plan_approve", user=APPROVERS[1])
    ws.command("pause R1")
    ws.deliver()
    assert buttons_of(ws.plan_message()) == {"run_resume": "R1", "run_abort": "R1"}

    assert "only operators" in ws.click("run_abort", user=VISITOR).responses[0]["text"]
    assert ws.click("run_abort", user=OPERATOR).responses[0]["text"] == "R1 aborted"
    assert ws.run().status == "aborted"


@pytest.mark.slow
def test_an_overrun_is_asked_in_the_thread_and_approved_by_button(ws: Workspace) -> None:
    estimate = ws.services.plan("lab", "10.1.0.1").total_estimate_s
    start = ws.clock.now()
    minutes = int(estimate // 60) + 10
    ws.command(f"plan lab 10.1.0.1 window={start:%Y-%m-%dT%H:%M}/{minutes}m")
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.click("plan_approve", user=APPROVERS[0])
    ws.click("plan_approve", user=APPROVERS[1])
    assert ws.run().status == "running"  # approved inside its window: starts at once

    # Held up for half an hour, the run can no longer finish inside its window.
    ws.command("pause R1")
    ws.clock.advance(timedelta(minutes=30))
    ws.command("resume R1")
    assert ws.drive("R1") == "awaiting_overrun"
    [ask] = [m for m in ws.slack.thread("C0UPGRADES", ws.plan_ts())
             if "approve the overrun" in m["text"]]
    assert buttons_of(ask) == {"overrun_approve": "R1", "run_abort": "R1"}

    assert "only configured approvers" in ws.click("overrun_approve",
                                                   user=VISITOR).responses[0]["text"]
    assert ws.click("overrun_approve", user=APPROVERS[2]).responses[0]["text"] == (
        "R1: overrun approved")
    assert ws.drive("R1") == "completed"
