"""The Home tab shows the person's roles and the runs."""

from __future__ import annotations

from tests.support.signing import event_body
from tests.support.workspace import OPERATOR, VISITOR, Workspace


def open_home(ws: Workspace, user: str) -> str:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
             "event_ts": "1700000000.000100"}
    assert ws.dispatch(event_body(event, event_id=f"EvHome{user}", event_time=0)).status == 200
    view = ws.slack.home_view(user)
    assert view is not None and view["type"] == "home"
    return str(view["blocks"])


def test_home_tab_shows_roles_and_runs(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")

    mine = open_home(ws, OPERATOR)
    theirs = open_home(ws, VISITOR)

    assert "you are operator and approver" in mine
    assert "a reader (status and history)" in theirs
    assert "*R1* lab → 10.1.0.1" in mine and "awaiting approval" in mine
    assert "/upgrade plan TARGET VERSION" in theirs
