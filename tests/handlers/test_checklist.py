"""Checklist acknowledgements: a button per manual item; no start until each is acknowledged."""

from __future__ import annotations

from storage import repo
from storage.db import unit_of_work
from tests.support.workspace import APPROVERS, OPERATOR, VISITOR, Workspace, buttons_of


def test_an_approved_run_waits_for_every_checklist_item_then_starts(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.deliver()
    plan = ws.plan_message()
    # Each manual item has its button on the plan message, and says it waits.
    assert {"checklist_release_notes", "checklist_backup",
            "checklist_licence_keys"} <= set(buttons_of(plan))
    assert "needs an operator's acknowledgement before the start" in plan["text"]

    ws.react(APPROVERS[0])
    ws.react(APPROVERS[1])
    ws.tick()
    # Approved, but one item short of the checklist: it does not start, and says why.
    assert ws.run().status == "approved"
    assert any("starts once an operator has acknowledged" in t for t in ws.thread())

    # A visitor cannot acknowledge; an operator can, once per item.
    refused = ws.click("checklist_backup", user=VISITOR).responses
    assert refused and "operator" in refused[0]["text"].lower()
    ws.click("checklist_release_notes", user=OPERATOR)
    ws.click("checklist_backup", user=OPERATOR)
    ws.tick()
    assert f"acknowledged by <@{OPERATOR}> at" in ws.plan_message()["text"]
    assert ws.run().status == "approved"
    assert ws.sim.count("POST", "/dma-supercluster/lab/set-service-status", "lab") == 0
    again = ws.click("checklist_backup", user=OPERATOR).responses[0]["text"]
    assert "already acknowledged" in again

    last = ws.click("checklist_licence_keys", user=OPERATOR).responses[0]["text"]
    assert last == "R1: licence keys obtained (if needed) acknowledged"
    ws.deliver()
    assert ws.run().status == "running"
    # Who and when: in the audit and on the board (and on the plan message before the start).
    with unit_of_work(ws.sessions) as session:
        run = repo.get_run(session=session, ref="R1")
        assert run is not None
        acks = [(a.actor, a.detail["item"]) for a in repo.audit_trail(session=session,
                                                                         run_id=run.id)
                if a.action == "checklist.acknowledged"]
    assert acks == [(OPERATOR, "release-notes"), (OPERATOR, "backup"),
                    (OPERATOR, "licence-keys")]
    board = ws.plan_message()["text"]
    assert f"☑ release notes read by <@{OPERATOR}> at" in board
