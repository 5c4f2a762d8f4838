"""/healthz's verdict: the database, the worker, the outbox and Slack, each able to make it 503;
Slack counts as down after 30 s of a closed socket or of failing Web API calls (injected clock),
and the Web API calls are observed through the real SDK against the Slack double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from bot.app.slack import web_client
from bot.clock import FakeClock
from bot.flows.health import Health, SlackLink
from storage import repo
from storage.db import make_engine, make_session_factory, unit_of_work
from tests.support.databases import fresh_sqlite
from tests.support.environment import make_environment
from tests.support.slack_double import SlackDouble


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(fresh_sqlite(tmp_path))
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def test_web_api_failing_for_30_s_makes_slack_down_and_one_answer_brings_it_back() -> None:
    clock = FakeClock()
    link = SlackLink(clock)
    link.api_call(ok=True)
    assert link.report()["ok"]
    link.api_call(ok=False)
    clock.advance(29)
    link.api_call(ok=False)  # still failing, but not for 30 s yet
    assert link.report()["ok"] and link.report()["api_failing_s"] == 29
    clock.advance(1)
    assert not link.report()["ok"]
    link.api_call(ok=True)
    assert link.report() == {"last_api_ok": clock.now().isoformat(), "api_failing_s": None,
                             "ok": True}


def test_a_socket_closed_for_30_s_makes_slack_down() -> None:
    clock = FakeClock()
    link = SlackLink(clock, socket_mode=True)
    clock.advance(31)
    assert not link.report()["ok"]  # never connected since the start
    link.socket(True)
    assert link.report()["ok"] and link.report()["socket_connected"] is True
    link.socket(False)
    clock.advance(10)
    link.socket(False)  # sampled again: the outage counts from the first sample
    clock.advance(19.5)
    assert link.report()["ok"] and link.report()["socket_down_s"] == 29.5
    clock.advance(0.5)
    assert not link.report()["ok"]
    link.socket(True)
    assert link.report()["ok"]


def test_health_is_503_while_slack_is_down_or_the_outbox_is_stuck(
        sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    link = SlackLink(clock)
    health = Health(sessions, clock, "http", started_at=clock.now(), slack=link,
                    outbox_stuck_after_s=600)
    health.ticked()
    link.api_call(ok=False)
    clock.advance(30)
    health.ticked()
    status, body = health.report()
    assert status == 503 and body["slack"]["ok"] is False and body["status"] == "unavailable"
    link.api_call(ok=True)
    assert health.report()[0] == 200

    # A message that has waited longer than the limit: delivery is stuck, whatever the cause.
    with unit_of_work(sessions) as session:
        repo.enqueue_message(session=session, at=clock.now(), payload={"text": "x"},
                             channel="C1")
    clock.advance(601)
    health.ticked()
    status, body = health.report()
    assert status == 503 and body["outbox"] == {"backlog": 1, "oldest_s": 601.0, "ok": False}


def test_the_web_client_reports_every_attempt_429s_included(tmp_path: Path) -> None:
    clock = FakeClock()
    link = SlackLink(clock)
    mine = metrics.Metrics()
    previous = metrics.install(mine)
    try:
        with SlackDouble() as slack:
            env = make_environment(slack_api_url=slack.base_url, slack_bot_token="xoxb-test")
            blocking = web_client(env, blocking_retries=True, reachable=link.api_call)
            quick: WebClient = web_client(env, blocking_retries=False, reachable=link.api_call)
            slack.fail("auth.test", retry_after=0, times=1)
            blocking.auth_test()  # a 429, retried by the SDK, then an answer: two attempts
            slack.outage(True)
            with pytest.raises(SlackApiError):
                quick.auth_test()
            assert link.api_failing_since == clock.now()
            slack.outage(False)
            quick.auth_test()
            assert link.api_failing_since is None and link.last_api_ok == clock.now()
            # A refused channel is Slack answering; a revoked token locks the bot out.
            slack.fail("chat.postMessage", error="channel_not_found")
            with pytest.raises(SlackApiError):
                quick.chat_postMessage(channel="C0NOWHERE", text="x")
            assert link.api_failing_since is None
            slack.fail("chat.postMessage", error="token_revoked")
            with pytest.raises(SlackApiError):
                quick.chat_postMessage(channel="C0NOWHERE", text="x")
            assert link.api_failing_since == clock.now()
    finally:
        metrics.install(previous)
    calls = mine.slack_calls
    assert calls.labels(method="auth.test", outcome="ratelimited")._value.get() == 1
    assert calls.labels(method="auth.test", outcome="ok")._value.get() == 2
    assert calls.labels(method="auth.test", outcome="http_503")._value.get() == 1


def test_health_reads_zero_filled_run_counts_for_the_metrics(
        sessions: sessionmaker[Session]) -> None:
    clock = FakeClock()
    state = Health(sessions, clock, "http").stored_state()
    assert state.runs_by_status["completed"] == 0 and state.outbox_backlog == 0
    assert state.outbox_oldest_s is None
