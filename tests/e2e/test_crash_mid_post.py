"""A real `upgradebot serve` killed (SIGKILL) between Slack's taking a post and the outbox's
commit: the next process finds the post by the outbox id in its metadata and does not post it
a second time; the short outbox lease (timing.outbox_lease) delays it by seconds only."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.slack.sink import METADATA_EVENT
from tests.e2e.bot_process import BotProcess, simulator, wait_until, write_config
from tests.support.signing import slash_command_body
from tests.support.slack_double import SlackDouble
from tests.support.workspace import CHANNEL, OPERATOR, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


def plan_ts(bot: BotProcess) -> str | None:
    """The plan message's ts as the bot's database has it."""
    from storage import repo
    from storage.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(bot.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            run = repo.get_run(session=session, ref="R1")
            return run.message_ts if run else None
    finally:
        engine.dispose()


def test_killed_between_slacks_answer_and_the_commit_no_second_post(
        tmp_path: Path, slack: SlackDouble) -> None:
    with simulator() as sim:
        config = write_config(tmp_path / "upgradebot.yml", sim)
        config.write_text(config.read_text().replace("  lease: 5s\n",
                                                     "  lease: 5s\n  outbox_lease: 2s\n"))
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url, config=config)
        try:
            bot.start()
            held = slack.hold_answer("chat.postMessage")
            body = slash_command_body("plan lab 10.1.0.1", user_id=OPERATOR,
                                      channel_id=CHANNEL, response_url=slack.response_url("p"))
            assert bot.post(body)[0] == 200
            assert held.arrived.wait(15), "the plan was never posted"
            # Slack has the plan message; the bot dies before it hears so.
            bot.kill()
            held.release.set()
            [posted] = slack.messages(CHANNEL)
            assert posted["metadata"]["event_type"] == METADATA_EVENT
            assert plan_ts(bot) is None  # the outcome never reached the database

            started = time.monotonic()
            bot.start()
            wait_until(lambda: plan_ts(bot) == posted["ts"], 20,
                       "the restarted bot to find the plan message", bot)
            print(f"\nrestarted bot settled the lost post {time.monotonic() - started:.1f} s "
                  "after its start")
            assert [m["ts"] for m in slack.messages(CHANNEL)] == [posted["ts"]]  # posted once
            assert slack.calls_to("conversations.history")
            assert bot.stop() == 0
        finally:
            bot.kill()
    assert len(slack.calls_to("chat.postMessage")) == 1
