"""Maintenance windows as Slack shows them: start at the window, expire unapproved, and a run
that finds the clusters changed does not start."""

from __future__ import annotations

from datetime import timedelta

from tests.support.engine_harness import simulated_clients
from tests.support.workspace import APPROVERS, SIM_PASSWORD, SIM_USER, Workspace, buttons_of


def window_text(ws: Workspace, start_in: timedelta, length: timedelta) -> str:
    start = ws.clock.now() + start_in
    return f"window={start:%Y-%m-%dT%H:%M}/{int(length.total_seconds() // 60)}m"


def test_an_approved_plan_starts_at_its_windows_start_not_before(ws: Workspace) -> None:
    ws.command(f"plan lab 10.1.0.1 {window_text(ws, timedelta(hours=2), timedelta(hours=4))}")
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.react(APPROVERS[0])
    ws.react(APPROVERS[1])
    assert ws.run().status == "scheduled"

    # An hour and 59 minutes later the worker still waits.
    for _ in range(4):
        ws.clock.advance(timedelta(minutes=29, seconds=45))
        ws.tick()
    assert ws.run().status == "scheduled" and ws.thread() == []
    assert "Status: scheduled" in ws.plan_message()["text"]

    ws.clock.advance(timedelta(minutes=2))
    ws.tick()
    assert ws.run().status == "running"
    assert ws.thread()[0] == "▶️ R1 — started"
    assert ws.drive("R1") == "completed"


def test_a_plan_still_unapproved_when_its_window_is_too_short_expires(ws: Workspace) -> None:
    estimate = timedelta(seconds=ws.services.plan("lab", "10.1.0.1").total_estimate_s)
    ws.command("plan lab 10.1.0.1 "
               + window_text(ws, timedelta(hours=1), estimate + timedelta(minutes=30)))
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.react(APPROVERS[0])  # one of the two approvals it needs
    ws.tick()
    assert ws.run().status == "awaiting_approval"
    assert buttons_of(ws.plan_message()) == {"plan_approve": "R1", "plan_reject": "R1"}

    # Past the point where the window still leaves room for the estimate, it expires.
    ws.clock.advance(timedelta(hours=1, minutes=31))
    ws.tick()
    assert ws.run().status == "expired"
    assert ws.thread() == ["⌛ R1 — expired: still not approved, and the window no longer "
                           "leaves room for the estimated "
                           f"{ws.thread()[0].rsplit('estimated ', 1)[1]}"]
    message = ws.plan_message()
    assert message["text"].startswith("*R1* — expired")
    assert "nothing was done" in str(message["blocks"]) and buttons_of(message) == {}

    # A late approval is refused, in private.
    ws.react(APPROVERS[1])
    assert ws.private(APPROVERS[1]) == ["R1: not counted — R1 is expired; it takes no "
                                        "approval now."]


def test_a_run_whose_clusters_changed_does_not_start_and_says_so(ws: Workspace) -> None:
    ws.command(f"plan lab 10.1.0.1 {window_text(ws, timedelta(hours=2), timedelta(hours=4))}")
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.react(APPROVERS[0])
    ws.react(APPROVERS[1])
    assert ws.run().status == "scheduled"

    # Meanwhile someone installs 10.0.0.4 on lab by hand, through its API.
    by_hand = simulated_clients(ws.settings, ws.sim, username=SIM_USER,
                                password=SIM_PASSWORD)("lab")
    by_hand.upload_package_url(ws.settings.packages["10.0.0.4"].url, None)
    ws.clock.advance(timedelta(minutes=15))
    by_hand.apply_upgrade()
    ws.clock.advance(timedelta(hours=1, minutes=50))
    assert ws.sim.version_of("lab") == "10.0.0.4"

    ws.tick()  # the window opens: the pre-flight step re-reads lab
    assert ws.run().status == "failed"
    [started, stopped] = ws.thread()
    assert started == "▶️ R1 — started"
    assert stopped.startswith("⛔ R1 — did not start: the clusters no longer match the plan: "
                              "lab runs 10.0.0.4, the plan says 10.0.0.3")
    board = ws.plan_message()
    assert "did not start" in board["text"]
    assert buttons_of(board) == {"run_retry": "R1", "run_abort": "R1"}
    assert ws.sim.count("POST", "/installed-software/upgrade-package/apply", "lab") == 1
