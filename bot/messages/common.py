"""What every message shares: the payload shape and how a Slack id is mentioned."""

from __future__ import annotations

from typing import Any

Payload = dict[str, Any]


def mention(slack_id: str) -> str:
    """Render a user or user-group id as a Slack mention."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` so text quoted from someone never renders as a mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
