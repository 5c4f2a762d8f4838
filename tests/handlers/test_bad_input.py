"""Input a stranger can send: run ids of any length are "no such run", quoted words never render
as mentions or links, and none of it costs an incident."""

from __future__ import annotations

import logging

import pytest

from tests.support.workspace import APPROVERS, OPERATOR, VISITOR, Workspace


@pytest.mark.parametrize("ref", ["R" + "9" * 1990, "R9223372036854775808", "r1000000000"])
def test_huge_run_ids_are_no_such_run(ws: Workspace, caplog: pytest.LogCaptureFixture,
                                      ref: str) -> None:
    reply = ws.command(f"status {ref}", user=VISITOR)

    [text] = reply.texts()
    assert text.startswith("⚠️ no run R") and "runs are named R1, R2" in text
    assert len(text) < 200  # the id is not echoed in full
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_huge_run_id_on_a_control_changes_nothing(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    reply = ws.command("pause R" + "1" * 40)
    assert "no run R11111111111…" in reply.texts()[-1]
    assert ws.run("R1").status == "awaiting_approval"


def test_quoted_words_are_escaped(ws: Workspace) -> None:
    for text in ("<!channel> now", "plan <!here|here> 10.1.0.1", "status <@U0OPERATOR>",
                 "history <https://evil.example|click> & more"):
        reply = ws.command(text, user=OPERATOR)
        for said in reply.texts():
            assert "<!" not in said and "<@" not in said and "<http" not in said, said
    reply = ws.command("<!channel>", user=VISITOR)
    assert "`&lt;!channel&gt;`" in reply.texts()[0]


def test_a_button_naming_a_huge_run_is_refused_politely(
        ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    ws.command("plan lab 10.1.0.1")
    reply = ws.click("plan_approve", user=APPROVERS[0], value="R" + "9" * 30)
    assert "does not name a run" in " ".join(reply.texts())
    assert ws.services.approvals("R1") == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
