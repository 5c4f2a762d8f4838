"""Approval by reaction, exactly as DESIGN.md says, and visible in the plan message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from storage import repo
from storage.db import unit_of_work
from tests.support.signing import event_body, reaction_event
from tests.support.workspace import (
    APPROVERS,
    CHANNEL,
    DEPLOY_BOT,
    OPERATOR,
    VISITOR,
    Workspace,
    buttons_of,
    workspace,
)


def audit(ws: Workspace, run: str = "R1") -> list[tuple[str, str]]:
    with unit_of_work(ws.sessions) as session:
        found = repo.get_run(session=session, ref=run)
        assert found is not None
        return [(e.actor, e.action) for e in repo.audit_trail(session=session, run_id=found.id)]


def test_only_approvers_other_than_the_requester_count_each_once(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.acknowledge()  # an operator acknowledges the checklist

    # The requester (an approver through the group), a visitor and a bot in the approvers'
    # group react: none of them counts; the two people are told why, privately.
    ws.react(OPERATOR)
    ws.react(VISITOR)
    ws.react(DEPLOY_BOT)
    assert ws.services.approvals("R1") == []
    assert ws.private(OPERATOR) == ["R1: not counted — the requester's own approval does not "
                                    "count."]
    assert ws.private(VISITOR) == ["R1: not counted — only configured approvers can approve."]
    assert ws.private(DEPLOY_BOT) == []

    # An approver of the group reacts; Slack delivers the same event again: it counts once.
    first = ws.react(APPROVERS[0], event_id="EvSAME")
    again = ws.react(APPROVERS[0], event_id="EvSAME", retry=1)
    assert (first.status, again.status) == (200, 200)
    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]
    assert ws.run().status == "awaiting_approval"

    # The plan message now shows who approved, and what is still needed.
    ws.deliver()
    message = ws.plan_message()
    assert "Approvals: 1 of 2" in message["text"]
    assert f"Approved by: <@{APPROVERS[0]}>" in message["text"]

    # An explicitly listed approver makes the quorum: the run starts at once (no window).
    ws.react(APPROVERS[2])
    assert ws.run().status == "running"
    assert ("U0APPROVER1", "approval.given") in audit(ws)
    assert ("U0APPROVER3", "run.approve") in audit(ws)


def test_removing_the_reaction_withdraws_until_the_run_starts(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1 window=2026-11-26T02:00/4h")
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.react(APPROVERS[0])
    ws.react(APPROVERS[1])
    assert ws.run().status == "scheduled"

    ws.react(APPROVERS[1], removed=True)
    assert ws.run().status == "awaiting_approval"
    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]
    assert (APPROVERS[1], "approval.withdrawn") in audit(ws)
    ws.deliver()
    assert "Approvals: 1 of 2" in ws.plan_message()["text"]

    # Given again, it counts again; once the run has started, taking it back does nothing.
    ws.react(APPROVERS[1])
    ws.clock.advance(4 * 3600)
    ws.tick()
    assert ws.run().status == "running"
    ws.react(APPROVERS[1], removed=True)
    assert ws.run().status == "running"
    assert ws.private(APPROVERS[1]) == ["R1: not counted — the run has started."]


def test_an_approvers_reject_reaction_ends_the_plan(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.react(VISITOR, reaction="x")
    assert ws.run().status == "awaiting_approval"
    assert ws.private(VISITOR) == ["R1: not counted — only configured approvers can reject."]

    ws.react(APPROVERS[1], reaction="x")
    ws.deliver()

    assert ws.run().status == "rejected"
    assert ws.thread() == [f"🛑 R1 — rejected by <@{APPROVERS[1]}>"]
    message = ws.plan_message()
    assert "rejected" in message["text"] and buttons_of(message) == {}
    assert (APPROVERS[1], "run.reject") in audit(ws)


def test_other_reactions_and_other_messages_are_ignored(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.react(APPROVERS[0], reaction="eyes")
    other = ws.slack.post_as_user(CHANNEL, "unrelated", user=VISITOR)
    ws.slack.add_reaction(CHANNEL, other, "white_check_mark", APPROVERS[1])
    event = reaction_event("reaction_added", user=APPROVERS[1], reaction="white_check_mark",
                           channel=CHANNEL, ts=other, item_user=VISITOR)
    assert ws.dispatch(event_body(event, event_id="EvOTHER", event_time=0)).status == 200
    assert ws.services.approvals("R1") == []
    assert ws.private(APPROVERS[0]) == ws.private(APPROVERS[1]) == []


def test_without_user_groups_only_listed_user_ids_count_and_the_log_says_so_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with workspace(tmp_path, usergroups=False) as ws, caplog.at_level(logging.WARNING):
        # Operators are a group here too, so nobody may plan: the plan is made directly.
        assert "only operators" in ws.command("plan lab 10.1.0.1").texts()[0]
        ws.services.submit(ws.services.plan("lab", "10.1.0.1"), requester=OPERATOR,
                           channel=CHANNEL)
        ws.react(APPROVERS[0])  # only in the group: the workspace cannot list groups
        ws.react(APPROVERS[1])
        ws.react(APPROVERS[2])  # listed by user id

        assert ws.services.approvals("R1") == [(APPROVERS[2], "reaction")]
        assert ws.private(APPROVERS[0]) == ["R1: not counted — only configured approvers can "
                                            "approve."]
    warnings = [r.getMessage() for r in caplog.records if "user groups cannot be read" in
                r.getMessage()]
    assert len(warnings) == 1 and "paid_teams_only" in warnings[0]


def test_a_reaction_that_beats_the_storing_of_the_plans_ts_still_counts(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ts = ws.plan_ts()
    # The outbox stores the ts just after Slack answered; an approver can react in between.
    with unit_of_work(ws.sessions) as session:
        repo.set_message_ts(session=session, run_id=1, ts=None)  # type: ignore[arg-type]
    ws.slack.add_reaction(CHANNEL, ts, "white_check_mark", APPROVERS[0])
    event = reaction_event("reaction_added", user=APPROVERS[0], reaction="white_check_mark",
                           channel=CHANNEL, ts=ts, item_user="UBOT")
    ws.dispatch(event_body(event, event_id="EvEarly", event_time=0))

    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]
    # A reaction on one of the bot's other messages (a thread reply) is still no approval.
    reply = ws.slack.post_as_user(CHANNEL, "not a plan", user="UBOT")
    late = reaction_event("reaction_added", user=APPROVERS[1], reaction="white_check_mark",
                          channel=CHANNEL, ts=reply, item_user="UBOT")
    ws.dispatch(event_body(late, event_id="EvReply", event_time=0))
    assert ws.services.approvals("R1") == [(APPROVERS[0], "reaction")]
