"""The one error path: domain errors become short ephemeral answers, the rest an incident id.

Registered with `@app.error` for listeners and middleware, and called by the background runner
for work done after the ack (cluster reads), so every failure is answered the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import incident, user_message
from bot.messages import escape
from bot.messages.blocks import ephemeral
from bot.slack.middleware import NotPermitted

log = logging.getLogger(__name__)

Respond = Callable[..., Any]


def describe(error: BaseException) -> str:
    """The answer for an error: its own words when expected, else an incident id (logged)."""
    said = user_message(error)
    if said is not None:  # it may quote the asker's words or a cluster's: nothing may render
        said = escape(said)
        return f"🚫 {said}" if isinstance(error, NotPermitted) else f"⚠️ {said}"
    return (f"💥 Something went wrong on the bot's side (incident "
            f"{incident(error, where='a Slack request')}). Nothing was changed by this request; "
            "the logs have the details under that id.")


def answer(text: str, *, respond: Respond | None, client: WebClient | None,
           channel: str | None, user: str | None) -> None:
    """Tell one person, privately: by response_url when there is one, else chat.postEphemeral."""
    try:
        if respond is not None:
            respond(**ephemeral(text), replace_original=False)
        elif client is not None and channel and user:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            log.info("could not tell anyone: %s", text)
    except (SlackApiError, OSError) as exc:  # the error answer itself failed: log, go on
        log.warning("could not deliver an error answer (%s)", type(exc).__name__)


def handle_error(error: Exception, body: dict[str, Any], context: Any, respond: Respond | None,
                 client: WebClient, ack: Any) -> BoltResponse | None:
    """`@app.error`: answer the person; before the ack, the answer is the ack itself."""
    text = describe(error)
    acked = ack is not None and ack.response is not None
    if body.get("command") and not acked:
        return BoltResponse(status=200, body=ephemeral(text))
    # Home-tab buttons, modals and events carry no response_url: bolt's respond would raise;
    # then the answer goes by chat.postEphemeral.
    answer(text, respond=respond if body.get("response_url") else None, client=client,
           channel=context.channel_id, user=context.user_id)
    return None if acked else BoltResponse(status=200, body="")
