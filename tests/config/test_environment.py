"""The process environment: defaults, blank variables, Socket Mode, and secrets that never show."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr, ValidationError

from bot.config import Environment
from tests.support.environment import make_environment


def test_environment_defaults():
    env = Environment.from_env({})
    assert env == make_environment()
    assert (env.slack_api_url, env.database_url, env.config_path) == \
        ("https://slack.com/api/", "sqlite:///upgradebot.db", "upgradebot.yml")
    assert env.slack_bot_token is None and env.dma_password is None and not env.socket_mode


def test_environment_reads_each_variable_and_treats_blank_as_unset():
    env = Environment.from_env({
        "SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "sig", "SLACK_APP_TOKEN": " ",
        "SLACK_API_URL": "http://127.0.0.1:9000/api/", "DATABASE_URL": "",
        "UPGRADEBOT_CONFIG": "/etc/upgradebot.yml", "DMA_USERNAME": "admin",
        "DMA_PASSWORD": "pw", "HOME": "/root",
    })
    assert env == make_environment(slack_bot_token="xoxb-1", slack_signing_secret="sig",
                                   slack_api_url="http://127.0.0.1:9000/api/",
                                   config_path="/etc/upgradebot.yml", dma_username="admin",
                                   dma_password="pw")
    assert not env.socket_mode
    assert Environment.from_env({"SLACK_APP_TOKEN": "xapp-1"}).socket_mode


def test_environment_repr_never_shows_secrets():
    env = Environment.from_env({
        "SLACK_BOT_TOKEN": "xoxb-secret-token", "SLACK_SIGNING_SECRET": "signing-secret",
        "SLACK_APP_TOKEN": "xapp-secret-token", "DMA_PASSWORD": "dma-secret",
        "DMA_USERNAME": "admin",
        "DATABASE_URL": "postgresql+psycopg://bot:db-secret@db.example.com:5432/upgradebot",
    })
    shown = repr(env) + str(env)
    for secret in ("xoxb-secret-token", "signing-secret", "xapp-secret-token", "dma-secret",
                   "db-secret"):
        assert secret not in shown
    assert "dma_username='admin'" in shown
    assert "postgresql+psycopg://bot:***@db.example.com:5432/upgradebot" in shown
    assert "slack_bot_token='***'" in shown and "slack_app_token='***'" in shown


SECRETS = {"SLACK_BOT_TOKEN": "xoxb-secret-token", "SLACK_SIGNING_SECRET": "signing-secret",
           "SLACK_APP_TOKEN": "xapp-secret-token", "DMA_PASSWORD": "dma-secret",
           "DATABASE_URL": "postgresql+psycopg://bot:db-secret@db.example.com:5432/upgradebot"}


def test_secrets_are_read_only_when_asked_for():
    env = Environment.from_env(SECRETS)
    assert isinstance(env.slack_bot_token, SecretStr)
    assert str(env.slack_bot_token) == "**********"
    assert [s.get_secret_value() if s else None for s in (
        env.slack_bot_token, env.slack_signing_secret, env.slack_app_token, env.dma_password)] == \
        ["xoxb-secret-token", "signing-secret", "xapp-secret-token", "dma-secret"]


def test_no_secret_reaches_a_log_line(caplog: pytest.LogCaptureFixture):
    env = Environment.from_env(SECRETS)
    log = logging.getLogger("upgradebot.test")
    with caplog.at_level(logging.INFO, logger="upgradebot.test"):
        log.info("starting with %s", env)
        log.info("starting with %r", env)
        log.info(f"starting with {env} {env!r}")
    assert len(caplog.records) == 3
    for secret in ("xoxb-secret-token", "signing-secret", "xapp-secret-token", "dma-secret",
                   "db-secret"):
        assert secret not in caplog.text
    assert "slack_signing_secret='***'" in caplog.text and "dma_password='***'" in caplog.text


@pytest.mark.parametrize(("variables", "socket"), [
    ({"SLACK_APP_TOKEN": "xapp-1"}, True),
    ({"SLACK_APP_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "sig"}, True),
    ({"SLACK_APP_TOKEN": " ", "SLACK_SIGNING_SECRET": "sig"}, False),
    ({"SLACK_APP_TOKEN": ""}, False),
    ({}, False),
])
def test_socket_mode_is_chosen_by_an_app_token(variables: dict[str, str], socket: bool):
    assert Environment.from_env(variables).socket_mode is socket


def test_only_from_env_reads_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-process")
    monkeypatch.setenv("UPGRADEBOT_CONFIG", "/elsewhere.yml")
    assert make_environment().slack_bot_token is None
    assert make_environment().config_path == "upgradebot.yml"
    assert Environment.from_env({}) == make_environment()


def test_an_environment_is_frozen():
    env = make_environment(dma_username="admin")
    with pytest.raises(ValidationError):
        env.dma_username = "root"  # type: ignore[misc]
