"""A running `upgradebot serve` (HTTP) under bad requests, over real HTTP: each is refused with a
4xx and one warning line, never a 5xx or a traceback in the log; the bot still serves after."""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.bot_process import SECRET, BotProcess, simulator, write_config
from tests.support.signing import slash_command_body
from tests.support.slack_double import SlackDouble
from tests.support.workspace import CHANNEL, OPERATOR, populate

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        populate(double)
        yield double


def send(bot: BotProcess, body: bytes, *, content_type: str, signed: bool = True,
         stamp: str | None = None) -> int:
    stamp = stamp or str(int(time.time()))
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp}
    if signed:
        mac = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        headers["X-Slack-Signature"] = "v0=" + mac.hexdigest()
    request = urllib.request.Request(f"http://127.0.0.1:{bot.port}/slack/events", data=body,
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


BAD = [
    (b'{"type": "event_callback", ', "application/json", True, None, 400),
    (b"payload=%7Bnot+json", "application/x-www-form-urlencoded", True, None, 400),
    (b"command=%2Fupgrade&text=\xff\xfe", "application/x-www-form-urlencoded", True, None, 400),
    (b'{"a": ' + b"[" * 20000 + b"]" * 20000 + b"}", "application/json", True, None, 400),
    (b"command=%2Fupgrade&text=help", "application/x-www-form-urlencoded", True, "soon", 401),
    (b"command=%2Fupgrade&text=help", "application/x-www-form-urlencoded", False, None, 401),
    (b"x=" + b"a" * (2 << 20), "application/x-www-form-urlencoded", True, None, 413),
    (b'{"type": "block_actions", "user": {"id": "U1"}}', "application/json", True, None, 200),
]


def test_bad_requests_cost_no_traceback(tmp_path: Path, slack: SlackDouble) -> None:
    with simulator() as sim:
        bot = BotProcess(tmp_path, slack_api_url=slack.base_url,
                         config=write_config(tmp_path / "upgradebot.yml", sim))
        try:
            bot.start()
            for body, content_type, signed, stamp, expected in BAD:
                assert send(bot, body, content_type=content_type, signed=signed,
                            stamp=stamp) == expected, body[:40]
            # Still serving: a real command gets its answer.
            ok = slash_command_body("help", user_id=OPERATOR, channel_id=CHANNEL,
                                    response_url=slack.response_url("h"))
            status, ack = bot.post(ok)
            assert status == 200 and "/upgrade plan" in ack
            assert bot.stop() == 0
        finally:
            bot.kill()
    assert not [line for line in bot.lines if "Traceback" in line or " 500 " in line]
    refusals = [line for line in bot.lines if "refused a request to /slack/events" in line
                or "acknowledged and ignored" in line]
    assert len(refusals) == len(BAD)  # one line each
