"""Start-up of `upgradebot serve`: a refused token stops it, an unreachable Slack does not."""

from __future__ import annotations

import pytest

from bot.app.slack import check_token, web_client
from bot.services import ServiceError
from tests.support.environment import make_environment
from tests.support.slack_double import SlackDouble


def test_a_refused_token_stops_the_start_and_an_outage_does_not() -> None:
    with SlackDouble() as slack:
        client = web_client(make_environment(slack_bot_token="xoxb-test",
                                             slack_api_url=slack.base_url), blocking_retries=False)
        assert check_token(client) is True

        slack.fail("auth.test", error="invalid_auth")
        with pytest.raises(ServiceError, match=r"refused the bot token \(invalid_auth\)"):
            check_token(client)

        slack.outage(True)
        assert check_token(client) is False  # serve anyway: the worker runs, messages wait
