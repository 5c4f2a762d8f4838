"""The process environment: defaults, blank variables, Socket Mode, and secrets that never show."""

from __future__ import annotations

from bot.config import Environment


def test_environment_defaults():
    env = Environment.from_env({})
    assert env == Environment()
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
    assert env == Environment(slack_bot_token="xoxb-1", slack_signing_secret="sig",
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

