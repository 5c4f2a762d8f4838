"""Who asked for what reaches the log (commands, clicks, reactions, then every audited change),
and slash-command acks are timed, through the real app and signed Slack-shaped requests."""

from __future__ import annotations

import logging

import pytest

from bot import metrics
from tests.support.workspace import APPROVERS, OPERATOR, VISITOR, Workspace


def test_commands_clicks_reactions_and_changes_are_logged_with_who(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    mine = metrics.Metrics()
    previous = metrics.install(mine)
    caplog.set_level(logging.INFO)
    try:
        ws.command("plan lab 10.1.0.1")
        ws.command("status <!channel>", user=VISITOR)
        ws.react(APPROVERS[0])
        ws.click("plan_reject", user=APPROVERS[1])
    finally:
        metrics.install(previous)
    asked = [(r.getMessage(), getattr(r, "actor", None)) for r in caplog.records
             if r.name == "upgradebot.requests"]
    assert asked[0] == (f"command /upgrade plan lab 10.1.0.1 by {OPERATOR} in C0UPGRADES",
                        OPERATOR)
    assert asked[1][0].startswith("command /upgrade status <!channel> by U0VISITOR")
    assert asked[2] == (f"reaction_added :white_check_mark: by {APPROVERS[0]} on "
                        f"C0UPGRADES/{ws.plan_ts()}", APPROVERS[0])
    assert asked[3][0].startswith("button plan_reject (") and asked[3][1] == APPROVERS[1]
    changes = [(r.getMessage(), getattr(r, "actor", None), getattr(r, "run", None))
               for r in caplog.records if r.name == "upgradebot.audit"]
    assert any(m.startswith(f"R1 approval.given by {APPROVERS[0]} ") and "source=reaction" in m
               and (a, r) == (APPROVERS[0], "R1") for m, a, r in changes)
    assert any(m.startswith("R1 run.reject (awaiting_approval → rejected) by U0APPROVER2")
               for m, _, _ in changes)
    # Both commands were acked and timed.
    assert mine.command_ack._sum.get() > 0
    assert sum(s.value for family in mine.registry.collect() for s in family.samples
               if s.name == "upgradebot_slash_command_ack_seconds_count") == 2
