"""The same flow once over Socket Mode: `upgradebot serve` with SLACK_APP_TOKEN set connects to a
local Socket Mode double; commands and reactions arrive as envelopes, answers go to the Web API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess, Latencies, simulator, wait_until, write_config
from tests.support.signing import (
    block_action_payload,
    event_payload,
    reaction_event,
    slash_command_payload,
)
from tests.support.slack_double import SlackDouble
from tests.support.socket_double import SocketModeDouble
from tests.support.workspace import APPROVERS, CHANNEL, OPERATOR, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


def test_a_whole_upgrade_over_socket_mode(tmp_path: Path, slack: SlackDouble) -> None:
    latencies = Latencies()
    with SocketModeDouble() as socket, simulator() as sim:
        socket.attach(slack)
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url, app_token="xapp-e2e",
                         config=write_config(tmp_path / "upgradebot.yml", sim))
        try:
            bot.start()
            socket.wait_for_connections(1, timeout=15)

            def command(text: str, rid: str) -> dict:
                payload = slash_command_payload(text, user_id=OPERATOR, channel_id=CHANNEL,
                                                response_url=slack.response_url(rid))
                started = time.perf_counter()
                ack = socket.wait_for_ack(socket.send("slash_commands", payload,
                                                      accepts_response_payload=True), 10)
                latencies.seconds.append(time.perf_counter() - started)
                return ack

            assert "/upgrade plan" in command("help", "h")["payload"]["text"]
            ack = command("plan lab 10.1.0.1", "p")
            assert ack["payload"]["text"] == "Reading the clusters…"
            slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1, 10, what="the plan")
            ts = slack.messages(CHANNEL)[0]["ts"]
            assert "R1 posted" in slack.responses_posted("p")[0]["text"]

            # The operator acknowledges the checklist with its buttons (interactive envelopes).
            for n, action_id in enumerate(("checklist_release_notes", "checklist_backup",
                                           "checklist_licence_keys")):
                socket.wait_for_ack(socket.send("interactive", block_action_payload(
                    user=OPERATOR, channel=CHANNEL, message_ts=ts, action_id=action_id,
                    value="R1", response_url=slack.response_url(f"a{n}"))), 10)
                slack.wait_for(lambda n=n: bool(slack.responses_posted(f"a{n}")), 10,
                               what="the acknowledgement")
            for n, user in enumerate((APPROVERS[0], APPROVERS[1])):
                slack.add_reaction(CHANNEL, ts, "white_check_mark", user)
                event = reaction_event("reaction_added", user=user, reaction="white_check_mark",
                                       channel=CHANNEL, ts=ts, item_user="UBOT")
                socket.wait_for_ack(socket.send("events_api", event_payload(
                    event, event_id=f"EvSock{n}", event_time=int(time.time()))), 10)

            wait_until(lambda: any("completed" in m["text"]
                                   for m in slack.thread(CHANNEL, ts)), 45, "completion", bot)
            thread = [m["text"] for m in slack.thread(CHANNEL, ts)]
            assert thread[0] == "▶️ R1 — started"
            assert any(t.startswith("✅ R1 — lab verified") for t in thread)
            assert thread[-1].startswith("🎉 R1 — completed: lab is on 10.1.0.1")
            assert command("status R1", "s") is not None
            slack.wait_for(lambda: bool(slack.responses_posted("s")), 10, what="status")
            assert "completed" in slack.responses_posted("s")[0]["text"]
            assert bot.stop() == 0
        finally:
            bot.kill()
    latencies.report("Socket Mode")
    assert max(latencies.seconds) < 3.0
