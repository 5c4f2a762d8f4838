"""What `serve` needs in each Slack mode, and where it listens by default."""

from __future__ import annotations

import threading
from typing import TypedDict

import pytest

from bot.app.serve import ServeOptions, _require, serve, watch_slack
from bot.app.slack import web_client
from bot.clock import FakeClock
from bot.flows.health import SlackLink
from bot.rehearsal import bundled_settings
from bot.services import ServiceError
from tests.support.environment import make_environment
from tests.support.slack_double import SlackDouble


class DmaLogin(TypedDict):
    """The DMA login fields of `Environment`, the only keys `DMA` holds."""

    dma_username: str
    dma_password: str


DMA: DmaLogin = {"dma_username": "admin", "dma_password": "pw"}


def test_http_mode_without_a_signing_secret_is_refused_and_says_why() -> None:
    env = make_environment(slack_bot_token="xoxb-1", **DMA)
    with pytest.raises(ServiceError) as refused:
        serve(bundled_settings(), env, stop=threading.Event())
    said = str(refused.value)
    assert said.startswith("set SLACK_SIGNING_SECRET: HTTP mode needs")
    assert "SLACK_APP_TOKEN for Socket Mode, which needs no signing secret" in said


def test_socket_mode_needs_the_two_tokens_only() -> None:
    _require(make_environment(slack_bot_token="xoxb-1", slack_app_token="xapp-1", **DMA))
    with pytest.raises(ServiceError, match="set SLACK_BOT_TOKEN: Socket Mode"):
        _require(make_environment(slack_app_token="xapp-1", **DMA))


def test_health_listens_on_loopback_in_socket_mode_unless_told() -> None:
    assert ServeOptions().host_for(socket_mode=True) == "127.0.0.1"
    assert ServeOptions().host_for(socket_mode=False) == "0.0.0.0"
    assert ServeOptions(host="10.0.0.5").host_for(socket_mode=True) == "10.0.0.5"


def test_the_slack_watch_samples_the_socket_and_probes_a_quiet_api() -> None:
    clock = FakeClock()
    link = SlackLink(clock, socket_mode=True)
    with SlackDouble() as slack:
        probe = web_client(make_environment(slack_api_url=slack.base_url, slack_bot_token="xoxb-t"),
                           blocking_retries=False, reachable=link.api_call)
        slack.outage(True)
        watch_slack(lambda: False, link, probe)
        clock.advance(30)
        watch_slack(lambda: False, link, probe)
        assert not link.report()["ok"] and link.report()["api_failing_s"] == 30
        slack.outage(False)
        watch_slack(lambda: True, link, probe)
        assert link.report()["ok"] and link.last_api_ok == clock.now()
        probes = len(slack.calls_to("auth.test"))
        clock.advance(5)
        watch_slack(lambda: True, link, probe)  # the API answered 5 s ago: no probe needed
        assert len(slack.calls_to("auth.test")) == probes
