"""The outbox's Slack sink: one queued message becomes one Web API call, and returns quickly.

It never waits on Slack: a 429 or a 5xx, an outage or a timeout raise `RetryLater` (with Slack's
Retry-After when given) and the outbox tries again later, so a cluster step never waits for
Slack. Its WebClient must have no blocking retry handlers and a short timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.messages.blocks import TEXT_MAX, clip
from bot.outbox import Outgoing, RetryLater

log = logging.getLogger(__name__)

# ok:false errors that a later try can cure (Slack's side, or the bot not yet in the channel).
TRANSIENT = frozenset({"ratelimited", "service_unavailable", "internal_error", "fatal_error",
                       "request_timeout", "team_added_to_org"})
WAIT_FOR_PEOPLE = frozenset({"channel_not_found", "not_in_channel", "is_archived",
                             "not_authed", "invalid_auth", "token_revoked", "account_inactive",
                             "missing_scope", "restricted_action"})
BAD_BLOCKS = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long",
                        "invalid_attachments"})
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed",
                  "user_not_in_channel", "user_not_found"})


class SlackSink:
    """Posts, edits and ephemeral messages through one WebClient."""

    def __init__(self, client: WebClient, *, server_error_delay_s: float = 2.0,
                 people_delay_s: float = 300.0) -> None:
        self.client = client
        self.server_error_delay_s = server_error_delay_s
        self.people_delay_s = people_delay_s

    def send(self, message: Outgoing) -> str | None:
        """Deliver one message; return the ts Slack gave it (None for edits and ephemerals)."""
        try:
            return self._call(message, dict(message.payload))
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in GONE:  # e.g. someone deleted the plan message: nothing to edit
                log.warning("message %s of %s cannot be delivered (%s); dropped", message.id,
                            message.run_name or "no run", error)
                return None
            if error in BAD_BLOCKS and "blocks" in message.payload:
                log.warning("Slack refused the blocks of message %s (%s); sending its text only",
                            message.id, error)
                return self._retry_plain(message)
            raise self._classify(message, exc) from None
        except (SlackRequestError, OSError) as exc:  # timeouts, refused connections, DNS
            raise RetryLater(self.server_error_delay_s,
                             f"Slack unreachable ({type(exc).__name__})") from None

    def _retry_plain(self, message: Outgoing) -> str | None:
        try:
            return self._call(message, {"text": message.payload.get("text", "")})
        except SlackApiError as exc:
            raise self._classify(message, exc) from None

    def _call(self, message: Outgoing, payload: dict[str, Any]) -> str | None:
        text = clip(str(payload.get("text") or "(no text)"), TEXT_MAX)
        blocks = payload.get("blocks")
        extra: dict[str, Any] = {"blocks": blocks} if blocks else {}
        channel = message.channel or ""  # no channel: Slack says channel_not_found, it waits
        if message.kind == "update":
            if not message.thread_ts:
                log.warning("message %s edits a plan message that was never posted; dropped",
                            message.id)
                return None
            self.client.chat_update(channel=channel, ts=message.thread_ts, text=text, **extra)
            return None
        if message.kind == "ephemeral":
            self.client.chat_postEphemeral(channel=channel, user=str(payload.get("user") or ""),
                                           text=text, **extra)
            return None
        if message.thread and payload.get("reply_broadcast"):
            extra["reply_broadcast"] = True  # an escalation: the channel sees it too
        answer = self.client.chat_postMessage(
            channel=channel, text=text, unfurl_links=False, unfurl_media=False,
            thread_ts=message.thread_ts if message.thread else None, **extra)
        return str(answer["ts"])

    def _classify(self, message: Outgoing, exc: SlackApiError) -> Exception:
        """Turn Slack's refusal into RetryLater, or drop what can never be delivered."""
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        headers: Mapping[str, Any] = exc.response.headers or {}
        if status == 429 or error == "ratelimited":
            return RetryLater(_retry_after(headers, 1.0), f"rate-limited by Slack ({error})")
        if status >= 500 or error in TRANSIENT:
            return RetryLater(_retry_after(headers, self.server_error_delay_s),
                              f"Slack error {error}")
        if error in WAIT_FOR_PEOPLE:
            log.error("Slack refused message %s for %s: %s; it waits (invite the bot, fix the "
                      "token or the channel) and is tried again every %.0f s", message.id,
                      message.run_name or "no run", error, self.people_delay_s)
            return RetryLater(self.people_delay_s, f"Slack refused it: {error}")
        log.error("Slack refused message %s with %s; trying again later", message.id, error)
        return RetryLater(60.0, f"Slack refused it: {error}")


def _retry_after(headers: Mapping[str, Any], default: float) -> float:
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return default
    return default
