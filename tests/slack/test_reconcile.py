"""Start-up: reactions given or taken back while the bot was down are read with reactions.get."""

from __future__ import annotations

from bot.slack.reconcile import Reconciled, Reconciler
from tests.support.workspace import (
    APPROVERS,
    CHANNEL,
    DEPLOY_BOT,
    OPERATOR,
    VISITOR,
    Workspace,
)


def restart(ws: Workspace) -> Reconciled:
    """What `upgradebot serve` does at start, before taking events."""
    return Reconciler(ws.services, ws.app.client, ws.membership).run()


def test_approvals_given_while_down_are_counted_at_start(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.acknowledge()  # an operator acknowledges the checklist
    ts = ws.plan_ts()
    # While the bot is down: the requester, a visitor, a bot and two approvers react.
    for user in (OPERATOR, VISITOR, DEPLOY_BOT, APPROVERS[0], APPROVERS[2]):
        ws.slack.add_reaction(CHANNEL, ts, "white_check_mark", user)

    result = restart(ws)

    assert result == Reconciled(approved=2, withdrawn=0, rejected=0, complete=True)
    assert sorted(ws.services.approvals("R1")) == [(APPROVERS[0], "reaction"),
                                                   (APPROVERS[2], "reaction")]
    assert ws.run().status == "running"
    assert restart(ws) == Reconciled(0, 0, 0, True)  # nothing open any more


def test_reactions_taken_back_while_down_withdraw_but_buttons_stay(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1 window=2026-11-26T04:00/4h")
    ws.react(APPROVERS[0])
    ws.click("plan_approve", user=APPROVERS[1])
    assert ws.run().status == "scheduled"
    ws.slack.remove_reaction(CHANNEL, ws.plan_ts(), "white_check_mark", APPROVERS[0])

    assert restart(ws) == Reconciled(0, 1, 0, True)
    assert ws.services.approvals("R1") == [(APPROVERS[1], "button")]
    assert ws.run().status == "awaiting_approval"


def test_an_approvers_rejection_given_while_down_ends_the_plan(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ts = ws.plan_ts()
    ws.slack.add_reaction(CHANNEL, ts, "x", VISITOR)  # not an approver: ignored
    ws.slack.add_reaction(CHANNEL, ts, "white_check_mark", APPROVERS[0])
    ws.slack.add_reaction(CHANNEL, ts, "x", APPROVERS[1])

    assert restart(ws).rejected == 1
    assert ws.run().status == "rejected"


def test_a_plan_slack_cannot_show_is_retried_later(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.plan_ts()
    ws.slack.fail("reactions.get", status=500)

    assert restart(ws).complete is False
    ws.slack.add_reaction(CHANNEL, ws.plan_ts(), "white_check_mark", APPROVERS[0])
    assert restart(ws) == Reconciled(1, 0, 0, True)
