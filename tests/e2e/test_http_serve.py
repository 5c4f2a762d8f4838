"""A whole upgrade driven the way Slack drives it, against a running `upgradebot serve` (HTTP).

plan → approvals by reaction (the requester's own ignored, a non-approver ignored, a Slack retry
of the same event counted once) → the run (through a Slack outage that loses no message) → a
thread reply per cluster → completion; then a clean stop on SIGTERM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.bot_process import (
    BotProcess,
    Latencies,
    simulator,
    wait_until,
    write_config,
)
from tests.support.signing import (
    block_action_body,
    event_body,
    reaction_event,
    slash_command_body,
)
from tests.support.slack_double import SlackDouble
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, VISITOR, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


ACKS = ("checklist_release_notes", "checklist_backup", "checklist_licence_keys")


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


class Slack:
    """Sends what Slack would send to the bot, and reads what the bot did in the double."""

    def __init__(self, bot: BotProcess, slack: SlackDouble) -> None:
        self.bot, self.slack = bot, slack
        self.latencies = Latencies()
        self.n = 0

    def command(self, text: str, user: str = OPERATOR) -> tuple[int, str, str]:
        """Type /upgrade text; return (HTTP status, ack body, response_url id)."""
        self.n += 1
        rid = f"cmd{self.n}"
        body = slash_command_body(text, user_id=user, channel_id=CHANNEL,
                                  response_url=self.slack.response_url(rid))
        status, ack = self.bot.post(body, latencies=self.latencies)
        return status, ack, rid

    def answers(self, rid: str, count: int = 1) -> list[str]:
        """The private answers that came by response_url."""
        self.slack.wait_for(lambda: len(self.slack.responses_posted(rid)) >= count, 15,
                            what=f"{count} answer(s) to {rid}")
        return [r["text"] for r in self.slack.responses_posted(rid)]

    def react(self, user: str, ts: str, *, event_id: str, retry: int = 0) -> int:
        """A reaction on the plan message, and Slack's event about it (or a retry of it)."""
        if not retry:
            self.slack.add_reaction(CHANNEL, ts, "white_check_mark", user)
        event = reaction_event("reaction_added", user=user, reaction="white_check_mark",
                               channel=CHANNEL, ts=ts, item_user="UBOT")
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} \
            if retry else {}
        status, _ = self.bot.post(event_body(event, event_id=event_id, event_time=0),
                                  headers=headers)
        return status

    def acknowledge(self, ts: str) -> None:
        """The operator clicks each checklist button of the plan message."""
        for n, action_id in enumerate(ACKS):
            rid = f"ack{n}"
            body = block_action_body(user=OPERATOR, channel=CHANNEL, message_ts=ts,
                                     action_id=action_id, value="R1",
                                     response_url=self.slack.response_url(rid))
            assert self.bot.post(body)[0] == 200

            def answered(rid: str = rid) -> bool:
                return bool(self.slack.responses_posted(rid))

            self.slack.wait_for(answered, 10, what=f"the answer to {rid}")

    def thread(self, ts: str) -> list[str]:
        return [m["text"] for m in self.slack.thread(CHANNEL, ts)]


def test_a_whole_upgrade_over_http(tmp_path: Path, slack: SlackDouble) -> None:
    # x1000: dallas's 35-minute install takes 2.1 s, a margin for Slack to go down before
    # dallas is verified (the test sees the run start, then cuts Slack off).
    with simulator(speed=1000) as sim:
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url,
                         config=write_config(tmp_path / "upgradebot.yml", sim))
        try:
            bot.start()
            _story(Slack(bot, slack))
            assert bot.stop() == 0
            assert any("upgradebot stopped" in line for line in bot.lines)
        finally:
            bot.kill()
        secrets = ("xoxb-e2e", "e2e-sim-password", "e2e-signing-secret")
        assert not [line for line in bot.lines if any(s in line for s in secrets)], \
            "a secret reached the log"


def _story(s: Slack) -> None:
    slack, bot = s.slack, s.bot
    # The health check answers before anything else.
    status, health = bot.get("/healthz")
    assert status == 200 and json.loads(health)["database"] == {"ok": True}

    # Anyone may read: help in the ack, inventory read after the ack.
    status, ack, _ = s.command("help", user=VISITOR)
    assert status == 200 and "/upgrade plan TARGET VERSION" in json.loads(ack)["text"]
    status, ack, rid = s.command("inventory", user=VISITOR)
    assert json.loads(ack)["text"] == "Reading the clusters…"
    assert "*dallas* (global): 10.0.0.3" in s.answers(rid)[0]

    # A mistake changes nothing and says what was expected.
    _, _, rid = s.command("plan globl 10.0.0.4")
    assert "did you mean 'global'?" in s.answers(rid)[0]
    assert bot.run_status() is None

    # The operator plans: one message in the channel, with buttons.
    _, _, rid = s.command("plan global 10.0.0.4")
    assert "R1 posted" in s.answers(rid)[0]
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1, 10, what="the plan message")
    [plan] = slack.messages(CHANNEL)
    ts = plan["ts"]
    assert plan["text"].startswith("*R1* — upgrade plan for supercluster *global*")
    assert {e["action_id"] for b in plan["blocks"] if b["type"] == "actions"
            for e in b["elements"]} == {"plan_approve", "plan_reject", *ACKS}
    # The operator acknowledges the checklist (release notes, backup, licence keys), on the
    # plan message, whose ts the bot has stored once its outbox is drained.
    wait_until(lambda: json.loads(bot.get("/healthz")[1])["outbox"]["backlog"] == 0, 10,
               "the outbox to drain")
    s.acknowledge(ts)

    # The requester's own reaction and a visitor's are ignored (each told privately).
    assert s.react(OPERATOR, ts, event_id="EvOwn") == 200
    assert s.react(VISITOR, ts, event_id="EvVisitor") == 200
    # An approver reacts; Slack retries the same event: it counts once.
    assert s.react(APPROVERS[0], ts, event_id="EvApprove1") == 200
    assert s.react(APPROVERS[0], ts, event_id="EvApprove1", retry=1) == 200
    slack.wait_for(lambda: "Approvals: 1 of 2" in slack.message(CHANNEL, ts)["text"], 10,
                   what="the plan message to show one approval")
    assert "Approved by: <@U0APPROVER1>" in slack.message(CHANNEL, ts)["text"]
    private = {e["user"]: e["text"] for e in slack.ephemerals(CHANNEL)}
    assert "requester's own approval does not count" in private[OPERATOR]
    assert "only configured approvers can approve" in private[VISITOR]
    assert bot.run_status() == "awaiting_approval"

    # The second approval: the run starts at once (no window).
    s.react(APPROVERS[2], ts, event_id="EvApprove3")
    wait_until(lambda: bot.run_status() == "running", 10, "the run to start")

    # Slack goes down while the clusters are upgraded; the steps go on regardless, and what
    # the bot has to say waits in the outbox.
    slack.wait_for(lambda: any("started" in t for t in s.thread(ts)), 10, what="started")
    slack.outage(True)
    wait_until(lambda: any("dallas verified" in t for t in bot.waiting_messages()), 30,
               "dallas to be verified while Slack is down")
    assert bot.run_status() in ("running", "completed")
    assert not any("dallas verified" in t for t in s.thread(ts))
    slack.outage(False)

    # Every cluster's verification, the final check and the completion reach the thread,
    # once each and in order.
    wait_until(lambda: any("completed" in t for t in s.thread(ts)), 45, "completion", bot)
    thread = s.thread(ts)
    order = ["▶️ R1 — started", "✅ R1 — dallas verified", "✅ R1 — denver verified",
             "✅ R1 — final check of global", "🎉 R1 — completed"]
    found = [next(i for i, t in enumerate(thread) if t.startswith(head)) for head in order]
    assert found == sorted(found), thread
    assert len(thread) == len(set(thread)), thread
    assert bot.run_status() == "completed"
    slack.wait_for(lambda: "completed" in slack.message(CHANNEL, ts)["text"], 15,
                   what="the status board to show completion")

    # Status and history answer privately; the outbox is empty again.
    _, _, rid = s.command("status R1", user=VISITOR)
    assert "completed" in s.answers(rid)[0]
    _, _, rid = s.command("history", user=VISITOR)
    assert "*R1* global → 10.0.0.4" in s.answers(rid)[0]
    wait_until(lambda: json.loads(bot.get("/healthz")[1])["outbox"]["backlog"] == 0, 10,
               "the outbox to drain")

    # The process's own metrics, in Prometheus' text format, tell the same story.
    status, text = bot.get("/metrics")
    sampled: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {
        (m.name, tuple(sorted(m.labels.items()))): m.value
        for f in text_string_to_metric_families(text) for m in f.samples}
    assert status == 200 and sampled[("upgradebot_runs", (("status", "completed"),))] == 1
    assert sampled[("upgradebot_slash_command_ack_seconds_count", ())] == len(s.latencies.seconds)
    assert sampled[("upgradebot_steps_started_total", (("kind", "install"),))] == 2
    assert sampled[("upgradebot_slack_api_calls_total",
                    (("method", "chat.postMessage"), ("outcome", "ok")))] >= len(thread) + 1
    assert sampled[("upgradebot_dma_requests_total",
                    (("cluster", "dallas"), ("method", "POST"), ("outcome", "ok")))] >= 1
    assert sampled[("upgradebot_worker_tick_lag_seconds_count", ())] >= 10
    assert sampled[("upgradebot_worker_claim_seconds_count", ())] >= 10

    s.latencies.report("HTTP mode")
    assert max(s.latencies.seconds) < 3.0
