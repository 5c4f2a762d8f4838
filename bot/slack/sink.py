"""The outbox's Slack sink: one queued message becomes one Web API call, and returns quickly.

It never waits on Slack: a 429 or a 5xx, an outage or a timeout raise `RetryLater` (with Slack's
Retry-After when given) and the outbox tries again later, so a cluster step never waits for
Slack. Its WebClient must have no blocking retry handlers and a short timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.error import HTTPError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse

from bot.engine.errors import UserError
from bot.messages.blocks import TEXT_MAX, clip
from bot.outbox import Outgoing, RetryLater

log = logging.getLogger(__name__)
# Renders the file an upload message describes ({"what": "timeline"|"evidence", "run": "R1"}).
FileRenderer = Callable[[Mapping[str, Any]], bytes]

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


METADATA_EVENT = "upgradebot_outbox"  # every post carries {"outbox_id": id} under this type
LOOKUP_PAGES = 5  # pages of conversations.history/replies read to find an earlier post


class SlackSink:
    """Posts, edits and ephemeral messages through one WebClient."""

    def __init__(self, client: WebClient, *, server_error_delay_s: float = 2.0,
                 people_delay_s: float = 300.0, files: FileRenderer | None = None) -> None:
        self.client = client
        self.files = files
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
        except HTTPError as exc:  # a file's bytes refused by the upload URL (the only urlopen
            exc.close()  # the SDK leaves to us): close its connection, or the socket leaks
            raise RetryLater(self.server_error_delay_s,
                             f"Slack refused the file's bytes (HTTP {exc.code})") from None
        except (SlackRequestError, OSError) as exc:  # timeouts, refused connections, DNS
            raise RetryLater(self.server_error_delay_s,
                             f"Slack unreachable ({type(exc).__name__})",
                             uncertain=True) from None  # a timeout may come after the post

    def find_sent(self, message: Outgoing) -> str | None:
        """The ts of an earlier post of this outbox message (by its metadata), else None.

        Read in the thread (`conversations.replies`) or the channel (`conversations.history`,
        newest first): a message whose outcome is unknown was tried seconds ago.
        """
        method: Callable[..., SlackResponse] = self.client.conversations_history
        args: dict[str, Any] = {"channel": message.channel or "", "limit": 100,
                                "include_all_metadata": True}
        if message.thread and message.thread_ts:
            method, args["ts"], args["limit"] = self.client.conversations_replies, \
                message.thread_ts, 200
        cursor = None
        try:
            for _ in range(LOOKUP_PAGES):
                answer = method(**args, **({"cursor": cursor} if cursor else {}))
                found = _with_outbox_id(answer.get("messages") or [], message.id)
                cursor = (answer.get("response_metadata") or {}).get("next_cursor")
                if found is not None or not cursor:
                    return found
        except SlackApiError as exc:
            if exc.response.get("error") == "missing_scope":  # installed before the scope
                log.error("cannot look message %s up (reinstall the app from manifest.yml for "
                          "channels:history and groups:history); posting it, it may show twice",
                          message.id)
                return None
            raise self._classify(message, exc) from None
        except (SlackRequestError, OSError) as exc:
            raise RetryLater(self.server_error_delay_s,
                             f"Slack unreachable ({type(exc).__name__})") from None
        log.warning("message %s: not found in the last %d pages; posting it", message.id,
                    LOOKUP_PAGES)
        return None

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
        if message.kind == "upload":
            self._upload(message, channel, text)
            return None
        if message.kind == "ephemeral":
            self.client.chat_postEphemeral(channel=channel, user=str(payload.get("user") or ""),
                                           text=text, **extra)
            return None
        if message.thread and payload.get("reply_broadcast"):
            extra["reply_broadcast"] = True  # an escalation: the channel sees it too
        answer = self.client.chat_postMessage(
            channel=channel, text=text, unfurl_links=False, unfurl_media=False,
            thread_ts=message.thread_ts if message.thread else None,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"outbox_id": message.id}},
            **extra)
        return str(answer["ts"])

    def _upload(self, message: Outgoing, channel: str, text: str) -> None:
        """Upload a file the Slack way of now: get an upload URL, POST the bytes, complete it."""
        spec = message.payload.get("file")
        if not isinstance(spec, Mapping) or self.files is None:
            log.warning("message %s is a file upload this sink cannot render; dropped", message.id)
            return
        try:
            data = self.files(spec)
        except UserError as exc:  # e.g. the run is gone: nothing to upload, ever
            log.warning("file of message %s not rendered (%s); dropped", message.id, exc)
            return
        self.client.files_upload_v2(
            channel=channel, thread_ts=message.thread_ts if message.thread else None,
            file=data, filename=str(spec.get("filename") or "file"),
            title=str(spec.get("title") or spec.get("filename") or "file"),
            initial_comment=text)

    def _classify(self, message: Outgoing, exc: SlackApiError) -> Exception:
        """Turn Slack's refusal into RetryLater, or drop what can never be delivered."""
        status = exc.response.status_code
        error = str(exc.response.get("error") or f"HTTP {status}")
        headers: Mapping[str, Any] = exc.response.headers or {}
        if status == 429 or error == "ratelimited":
            return RetryLater(_retry_after(headers, 1.0), f"rate-limited by Slack ({error})",
                              rate_limited=True)
        if status >= 500 or error in TRANSIENT:  # a 5xx may come after the post was made
            return RetryLater(_retry_after(headers, self.server_error_delay_s),
                              f"Slack error {error}", uncertain=status >= 500)
        if error in WAIT_FOR_PEOPLE:
            log.error("Slack refused message %s for %s: %s; it waits (invite the bot, fix the "
                      "token or the channel) and is tried again every %.0f s", message.id,
                      message.run_name or "no run", error, self.people_delay_s)
            return RetryLater(self.people_delay_s, f"Slack refused it: {error}")
        log.error("Slack refused message %s with %s; trying again later", message.id, error)
        return RetryLater(60.0, f"Slack refused it: {error}")


def _with_outbox_id(messages: list[Any], outbox_id: int) -> str | None:
    for found in messages:
        meta = found.get("metadata") or {} if isinstance(found, dict) else {}
        if meta.get("event_type") == METADATA_EVENT \
                and (meta.get("event_payload") or {}).get("outbox_id") == outbox_id:
            return str(found["ts"])
    return None


def _retry_after(headers: Mapping[str, Any], default: float) -> float:
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) else value
            try:
                return max(float(raw), 0.0)
            except (TypeError, ValueError):
                return default
    return default
