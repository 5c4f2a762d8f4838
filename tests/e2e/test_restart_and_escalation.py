"""Against a running `upgradebot serve` (HTTP): approvals given while the bot was stopped are
counted when it starts again; an escalation reaches the thread and holds the run, and only an
operator may act on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess, simulator, wait_until, write_config
from tests.support.signing import block_action_body, slash_command_body
from tests.support.slack_double import SlackDouble
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


def click(bot: BotProcess, slack: SlackDouble, action_id: str, user: str, ts: str,
          rid: str) -> list[str]:
    body = block_action_body(user=user, channel=CHANNEL, message_ts=ts, action_id=action_id,
                             value="R1", response_url=slack.response_url(rid))
    assert bot.post(body)[0] == 200
    slack.wait_for(lambda: bool(slack.responses_posted(rid)), 10, what=f"the answer to {rid}")
    return [r["text"] for r in slack.responses_posted(rid)]


def test_approvals_while_stopped_then_an_escalation(tmp_path: Path, slack: SlackDouble) -> None:
    with simulator(faults=("dallas=one-server",), speed=1500) as sim:
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url,
                         config=write_config(tmp_path / "upgradebot.yml", sim))
        try:
            bot.start()
            # The operator plans; the plan is posted; then the bot is stopped.
            body = slash_command_body("plan global 10.0.0.4", user_id=OPERATOR,
                                      channel_id=CHANNEL, response_url=slack.response_url("p"))
            assert bot.post(body)[0] == 200
            slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1, 10, what="the plan")
            ts = slack.messages(CHANNEL)[0]["ts"]
            wait_until(lambda: json.loads(bot.get("/healthz")[1])["outbox"]["backlog"] == 0, 10,
                       "the outbox to drain")
            # The operator acknowledges the checklist with its buttons (on the plan message,
            # whose ts the bot has stored once the outbox is drained).
            for n, action_id in enumerate(("checklist_release_notes", "checklist_backup",
                                           "checklist_licence_keys")):
                assert "acknowledged" in click(bot, slack, action_id, OPERATOR, ts, f"a{n}")[0]
            wait_until(lambda: json.loads(bot.get("/healthz")[1])["outbox"]["backlog"] == 0, 10,
                       "the outbox to drain")
            assert bot.stop() == 0

            # While it is down, two approvers react (Slack's events go nowhere).
            for user in (APPROVERS[0], APPROVERS[2]):
                slack.add_reaction(CHANNEL, ts, "white_check_mark", user)

            # At start it re-reads the reactions: the plan is approved and the run starts.
            bot.start()
            wait_until(lambda: bot.run_status() not in (None, "awaiting_approval"), 10,
                       "the approvals to be recovered")
            assert bot.run_status() in ("running", "escalated")

            # dallas comes back with one server: the escalation reaches the thread, and the run
            # holds.
            slack.wait_for(lambda: any("escalation on *dallas*" in m["text"]
                                       for m in slack.thread(CHANNEL, ts)), 30,
                           what="the escalation prompt")
            [prompt] = [m for m in slack.thread(CHANNEL, ts) if "escalation on" in m["text"]]
            assert "Polycom Global Services, +1 800 765 9266" in prompt["text"]
            assert "<!subteam^S0ONCALL>" in prompt["text"]
            assert {e["action_id"] for b in prompt["blocks"] if b["type"] == "actions"
                    for e in b["elements"]} == {"escalation_ack", "run_retry", "run_abort",
                                        "run_rollback"}
            # Broadcast: the real process asked Slack to show the reply in the channel too.
            assert prompt.get("subtype") == "thread_broadcast"
            assert bot.run_status() == "escalated"

            # An approver who is not an operator cannot retry; the operator aborts.
            refused = click(bot, slack, "run_retry", APPROVERS[0], prompt["ts"], "r1")
            assert "only operators may do that" in refused[0]
            assert bot.run_status() == "escalated"
            assert click(bot, slack, "run_abort", OPERATOR, prompt["ts"], "r2") == [
                "R1 aborted"]
            slack.wait_for(lambda: any(f"aborted by <@{OPERATOR}>" in t["text"]
                                       for t in slack.thread(CHANNEL, ts)), 10,
                           what="the abort notice")
            assert bot.stop() == 0
        finally:
            bot.kill()
        # Nothing else was touched on denver: no install was ever asked of it.
        assert sim.count("POST", "/installed-software/upgrade-package/apply", "denver") == 0
