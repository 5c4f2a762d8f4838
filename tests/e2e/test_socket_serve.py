"""The same flow once over Socket Mode: `upgradebot serve` with SLACK_APP_TOKEN set connects to a
local Socket Mode double; commands and reactions arrive as envelopes, answers go to the Web API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

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
    with SocketModeDouble() as socket, simulator(speed=1500) as sim:
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

            wait_until(lambda: json.loads(bot.get("/healthz")[1])["outbox"]["backlog"] == 0,
                       10, "the outbox to drain")  # the bot has stored the plan's ts
            # The operator acknowledges the checklist with its buttons (interactive envelopes).
            for n, action_id in enumerate(("checklist_release_notes", "checklist_backup",
                                           "checklist_licence_keys")):
                socket.wait_for_ack(socket.send("interactive", block_action_payload(
                    user=OPERATOR, channel=CHANNEL, message_ts=ts, action_id=action_id,
                    value="R1", response_url=slack.response_url(f"a{n}"))), 10)

                def acknowledged(n: int = n) -> bool:
                    return bool(slack.responses_posted(f"a{n}"))

                slack.wait_for(acknowledged, 10, what="the acknowledgement")
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


def test_socket_mode_starts_with_two_tokens_and_serves_health_and_metrics(
        tmp_path: Path, slack: SlackDouble) -> None:
    # No signing secret, no --host: Socket Mode needs neither; health and metrics listen on
    # loopback, and every line the process writes is one JSON object.
    with SocketModeDouble() as socket, simulator() as sim:
        socket.attach(slack)
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url, app_token="xapp-e2e",
                         signing_secret=None, host=None, args=("--log-format", "json"),
                         config=write_config(tmp_path / "upgradebot.yml", sim))
        try:
            bot.start()
            socket.wait_for_connections(1, timeout=15)
            assert any("listening on http://127.0.0.1:" in line for line in bot.lines)

            # Health: database, worker, outbox, and Slack (the socket is connected).
            wait_until(lambda: json.loads(bot.get("/healthz")[1])["slack"]["socket_connected"],
                       10, "the socket in /healthz", bot)
            status, text = bot.get("/healthz")
            health = json.loads(text)
            assert status == 200 and health["status"] == "ok" and health["mode"] == "socket"
            assert health["database"]["ok"] and not health["worker"]["stalled"]
            assert health["outbox"]["backlog"] == 0 and health["slack"]["ok"]

            # A command over the socket is acked; the metrics show it, and the Slack calls.
            payload = slash_command_payload("status", user_id=OPERATOR, channel_id=CHANNEL,
                                            response_url=slack.response_url("s"))
            socket.wait_for_ack(socket.send("slash_commands", payload,
                                            accepts_response_payload=True), 10)
            status, text = bot.get("/metrics")
            assert status == 200
            found = {(s.name, tuple(sorted(s.labels.items()))): s.value
                     for f in text_string_to_metric_families(text) for s in f.samples}
            assert found[("upgradebot_slash_command_ack_seconds_count", ())] == 1
            assert found[("upgradebot_slack_api_calls_total",
                          (("method", "auth.test"), ("outcome", "ok")))] >= 1
            assert found[("upgradebot_slack_api_calls_total",
                          (("method", "apps.connections.open"), ("outcome", "ok")))] >= 1
            assert found[("upgradebot_runs", (("status", "completed"),))] == 0
            assert found[("upgradebot_slack_up", ())] == 1

            # Slack's end of the socket goes away: health sees it at once, and counts the
            # seconds (503 only after 30 s; tests/flows/test_health.py checks that rule).
            socket.stop()
            wait_until(lambda: not json.loads(bot.get("/healthz")[1])["slack"]
                       ["socket_connected"], 10, "the closed socket in /healthz", bot)
            status, text = bot.get("/healthz")
            assert status == 200 and json.loads(text)["slack"]["socket_down_s"] < 30
            assert bot.stop() == 0
        finally:
            bot.kill()
    records = [json.loads(line) for line in bot.lines]  # each line is JSON, or this fails
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    said = [r["message"] for r in records]
    assert any(m.startswith("upgradebot connected to Slack by Socket Mode") for m in said)
    assert said[-1] == "upgradebot stopped"
    command = next(r for r in records if r["message"].startswith("command /upgrade status"))
    assert command["actor"] == OPERATOR
    assert not any("xapp-e2e" in line or "xoxb-e2e" in line for line in bot.lines)
