"""/upgrade as people type it: answers are private, mistakes change nothing, roles are enforced."""

from __future__ import annotations

import logging
import re

import pytest

from bot.services import Services
from tests.support.workspace import (
    APPROVERS,
    CHANNEL,
    OPERATOR,
    VISITOR,
    Workspace,
    block_text,
    buttons_of,
)


def nothing_changed(ws: Workspace) -> bool:
    """No run stored and nothing posted in the channel."""
    ws.deliver()
    return ws.services.history() == [] and ws.slack.messages(CHANNEL) == []


def test_help_is_the_ack_itself(ws: Workspace) -> None:
    reply = ws.command("help", user=VISITOR)

    assert reply.status == 200 and reply.ack is not None
    assert reply.ack["response_type"] == "ephemeral"
    for verb in ("inventory", "plan", "status", "pause", "resume", "abort", "retry", "history"):
        assert f"/upgrade {verb}" in reply.ack["text"]
    assert reply.responses == []


def test_inventory_is_read_after_the_ack_and_shows_every_cluster(ws: Workspace) -> None:
    reply = ws.command("inventory", user=VISITOR)

    # The ack says it is reading; the answer comes by response_url once the clusters answered.
    assert reply.ack == {"response_type": "ephemeral", "text": "Reading the clusters…"}
    [answer] = reply.responses
    assert answer["response_type"] == "ephemeral"
    for line in ("*dallas* (global): 10.0.0.3 — ✅ 2 of 2 servers up",
                 "*denver* (global): 10.0.0.3", "*lab* (stand-alone): 10.0.0.3 — ✅ 1 of 1"):
        assert line in answer["text"]
    assert nothing_changed(ws)


def test_plan_posts_one_message_with_everything_to_approve_it(ws: Workspace) -> None:
    reply = ws.command("plan global 10.1.0.1 strategy=incremental "
                       "window=2026-11-28T22:00/12h tz=America/Chicago")
    ws.acknowledge()  # an operator acknowledges the checklist

    assert reply.ack is not None and "Reading the clusters" in reply.ack["text"]
    assert "R1 posted in <#C0UPGRADES>" in reply.responses[-1]["text"]
    ws.deliver()
    [message] = ws.slack.messages(CHANNEL)
    blocks = block_text(message)
    # Run id, target, versions, strategy and why, order, estimates, window in its zone,
    # checklist, all ten factors, approvals needed and from whom.
    for words in ("R1", "global", "10.0.0.3 → 10.1.0.1", "incremental", "Why this strategy",
                  "dallas (cluster A, seeds the new supercluster)", "Estimated duration",
                  "2026-11-28 22:00\u201310:00 America/Chicago (12h)", "Pre-flight checklist",
                  "release notes", "10. Site-topology bandwidth limits",
                  "0 of 2 from <!subteam^S0APPROVERS>, <@U0APPROVER3>",
                  f"requester <@{OPERATOR}> does not count"):
        assert words in blocks, words
    assert buttons_of(message) == {"plan_approve": "R1", "plan_reject": "R1"}
    assert "Window: 2026-11-28 22:00\u201310:00 America/Chicago" in message["text"]
    assert ws.run().status == "awaiting_approval" and ws.run().requester == OPERATOR


@pytest.mark.parametrize(("text", "says"), [
    ("plan globl 10.1.0.1", "did you mean 'global'?"),
    ("plan global 10.9", "is not a DMA version"),
    ("plan global 10.1.0.1 strategy=quick", "unknown strategy `quick`"),
    ("plan global 10.1.0.1 window=2026-11-28T22:00/4h tz=Mars/Olympus", "unknown time zone"),
    ("plan global 10.1.0.1 window=next-friday", "is not a window"),
    ("plan global 9.9.9.9", "no package for 9.9.9.9"),
    ("plan global 10.1.0.1", "give a maintenance window"),
    ("upgrade global", "unknown subcommand `upgrade`"),
])
def test_mistakes_get_a_short_private_answer_and_change_nothing(ws: Workspace, text: str,
                                                                says: str) -> None:
    reply = ws.command(text)

    assert reply.status == 200
    assert any(says in t for t in reply.texts()), reply.texts()
    assert all(r.get("response_type") == "ephemeral" for r in reply.responses)
    assert nothing_changed(ws)


def test_only_operators_change_state_and_everyone_reads(ws: Workspace) -> None:
    refused = ws.command("plan lab 10.1.0.1", user=VISITOR)

    assert refused.ack is not None and "only operators may do that" in refused.ack["text"]
    assert nothing_changed(ws)
    # An approver who is not an operator may not plan either; anyone may read.
    assert "only operators" in ws.command("plan lab 10.1.0.1", user=APPROVERS[0]).texts()[0]
    assert ws.command("status", user=VISITOR).responses[0]["text"] == (
        "No run is under way or waiting.")
    assert ws.command("history", user=VISITOR).responses[0]["text"] == "No runs yet."


def test_a_target_held_by_another_run_cannot_be_planned_again(ws: Workspace) -> None:
    ws.command("plan global 10.0.0.4")
    reply = ws.command("plan dallas 10.0.0.4")

    assert "R1 (global, awaiting approval) still holds dallas" in reply.texts()[-1]
    assert [r.name for r in ws.services.history()] == ["R1"]


def test_status_and_history_describe_runs(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")

    overview = ws.command("status", user=VISITOR).responses[0]["text"]
    detail = ws.command("status R1", user=VISITOR).responses[0]["text"]
    history = ws.command("history lab", user=VISITOR).responses[0]["text"]

    assert "*R1* lab → 10.1.0.1 (basic): awaiting approval" in overview
    assert "⏳ preflight: pending" in detail and "install:lab" in detail
    assert "*R1* lab → 10.1.0.1" in history
    assert "did you mean 'lab'?" in ws.command("history labb").texts()[-1]
    assert "no run R7" in ws.command("status R7").texts()[-1]


def test_operators_pause_resume_and_abort_and_the_thread_says_so(ws: Workspace) -> None:
    ws.command("plan lab 10.1.0.1")
    ws.acknowledge()  # an operator acknowledges the checklist
    for approver in APPROVERS[:2]:
        ws.react(approver)
    ws.tick()
    assert ws.run().status == "running"

    assert ws.command("pause R1").responses[0]["text"] == "R1 paused"
    assert "only operators" in ws.command("resume R1", user=VISITOR).texts()[0]
    assert ws.command("resume R1").responses[0]["text"] == "R1 resumed"
    assert ws.command("abort R1").responses[0]["text"] == "R1 aborted"
    # Aborting again is refused in words, not with a traceback.
    assert "aborted; cannot abort" in ws.command("abort R1").texts()[-1]
    ws.deliver()
    thread = ws.thread()
    assert any(f"paused by <@{OPERATOR}>" in t for t in thread)
    assert any(f"resumed by <@{OPERATOR}>" in t for t in thread)
    assert any(f"aborted by <@{OPERATOR}>" in t for t in thread)


def test_an_unexpected_failure_shows_an_incident_id_that_is_in_the_log(
        ws: Workspace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(self: Services, target: str | None = None, limit: int = 10) -> list[object]:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(Services, "history", broken)
    with caplog.at_level(logging.ERROR):
        reply = ws.command("history")

    [answer] = reply.responses
    incident = re.search(r"incident ([0-9a-f]{8})", answer["text"])
    assert incident and answer["response_type"] == "ephemeral"
    assert "on fire" not in answer["text"]
    assert any(incident.group(1) in r.getMessage() for r in caplog.records)
