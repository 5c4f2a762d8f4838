"""What every message shares: the payload shape and how a Slack id is mentioned."""

from __future__ import annotations

from typing import Any

Payload = dict[str, Any]


def fmt_duration(seconds: float) -> str:
    """Say a duration the way people do: '1 h 35 min', '35 min', '40 s'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def mention(slack_id: str) -> str:
    """Render a user or user-group id as a Slack mention."""
    return f"<!subteam^{slack_id}>" if slack_id.startswith("S") else f"<@{slack_id}>"
