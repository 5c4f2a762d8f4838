"""The status board as Slack shows it: phases, expected ends in the run's zone, the window, the
outage so far, and who approved and when."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.support.workspace import APPROVERS, Workspace


@pytest.mark.slow
def test_the_board_says_when_it_ends_in_the_runs_zone_and_who_approved(ws: Workspace) -> None:
    # 22:00 UTC is 16:00 in Chicago: a window from 15:30 to 23:30 local time.
    ws.command("plan lab 10.1.0.1 window=2026-11-25T15:30/8h tz=America/Chicago")
    ws.click("plan_approve", user=APPROVERS[0])
    ws.clock.advance(timedelta(minutes=3))
    ws.click("plan_approve", user=APPROVERS[1])
    ws.acknowledge()  # an operator acknowledges the checklist
    ws.tick()
    board = ws.plan_message()["text"]
    estimate = ws.services.plan("lab", "10.1.0.1").total_estimate_s

    # Who approved and when stays on the board once the plan becomes it.
    assert f"Approved by <@{APPROVERS[0]}> (16:00 CST), <@{APPROVERS[1]}> (16:03 CST)" in board
    # The cluster's phase, its time against its estimate and its expected end, local time.
    lab = next(line for line in board.splitlines() if line.startswith("  • lab:"))
    found = re.search(r"/ est\. .*; expected end (\d\d:\d\d) CST\)", lab)
    assert found is not None, lab
    # The run's expected end (lab's, the run's only cluster: before the plan's whole estimate
    # from now, as the pre-flight is done), the time left in the window, the outage so far.
    latest = (ws.clock.now() + timedelta(seconds=estimate) - timedelta(hours=6))
    assert "16:03" < found.group(1) <= latest.strftime("%H:%M")
    assert f"Expected end {found.group(1)} CST" in board
    assert "window ends 23:30 CST (7 h 27 min left)" in board
    assert "outage so far" in board

    assert ws.drive("R1") == "completed"
    board = ws.plan_message()["text"]
    lab = next(line for line in board.splitlines() if line.startswith("  • lab:"))
    assert re.search(r"; done \d\d:\d\d CST\)", lab), lab
    assert "Expected end" not in board and "window ends" not in board
    outage = re.search(r"Outage so far (.+?) \(time with a cluster out of service\)", board)
    assert outage is not None and outage.group(1) not in ("0 s", "")
    assert f"Approved by <@{APPROVERS[0]}> (16:00 CST)" in board
