"""Inbound Slack requests for tests: payloads shaped like Slack's, and bodies signed like Slack's.

Each `*_payload` function returns the dict a Socket Mode envelope carries; each `*_body` function
returns the exact string Slack would POST in HTTP mode, to be signed with `sign()`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlencode

from slack_bolt import BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.messages.ids import SLASH_COMMAND

DEFAULT_RESPONSE_URL = "https://hooks.slack.com/commands/T0TEST/1/response"
_TRIGGERS = itertools.count(1)


def new_trigger_id() -> str:
    """A fresh trigger id, as Slack sends with every command and click."""
    return f"1700000000.{next(_TRIGGERS)}.0123456789abcdef0123456789abcdef"


def sign(secret: str, body: str, timestamp: int) -> dict[str, str]:
    """Return the headers Slack would send with `body` at `timestamp` (Unix seconds)."""
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None  # only None when the timestamp is missing
    is_json = body.lstrip().startswith("{")
    return {
        "X-Slack-Signature": signature,
        "X-Slack-Request-Timestamp": str(timestamp),
        "Content-Type": "application/json" if is_json else "application/x-www-form-urlencoded",
    }


def signed_request(secret: str, body: str, timestamp: int) -> BoltRequest:
    """Return a BoltRequest for `app.dispatch`, signed at `timestamp`."""
    headers: dict[str, str | Sequence[str]] = {**sign(secret, body, timestamp)}
    return BoltRequest(body=body, headers=headers)


def slash_command_payload(
    text: str = "",
    *,
    user_id: str = "U0USER",
    channel_id: str = "C0CHAN",
    command: str = SLASH_COMMAND,
    team_id: str = "T0TEST",
    api_app_id: str = "A0TEST",
    response_url: str = DEFAULT_RESPONSE_URL,
    trigger_id: str | None = None,
    user_name: str = "operator",
    channel_name: str = "dma-upgrades",
) -> dict[str, str]:
    """Return the fields of a slash command invocation (all strings, as Slack sends them)."""
    return {
        "team_id": team_id,
        "team_domain": "test-team",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger_id(),
    }


def slash_command_body(text: str = "", **fields: str) -> str:
    """Return a slash command as Slack POSTs it (form-encoded); see slash_command_payload."""
    return urlencode(slash_command_payload(text, **fields))


def event_payload(
    event: dict[str, Any],
    *,
    event_id: str,
    event_time: int,
    team_id: str = "T0TEST",
    api_app_id: str = "A0TEST",
    bot_user_id: str = "UBOT",
) -> dict[str, Any]:
    """Wrap an event in the event_callback envelope Slack delivers it in."""
    return {
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }


def event_body(
    event: dict[str, Any],
    *,
    event_id: str,
    event_time: int,
    team_id: str = "T0TEST",
    api_app_id: str = "A0TEST",
) -> str:
    """Return an event_callback as Slack POSTs it (JSON)."""
    payload = event_payload(
        event, event_id=event_id, event_time=event_time, team_id=team_id, api_app_id=api_app_id
    )
    return json.dumps(payload)


def reaction_event(
    kind: Literal["reaction_added", "reaction_removed"],
    *,
    user: str,
    reaction: str,
    channel: str,
    ts: str,
    item_user: str,
    event_ts: str = "1700009999.000100",
) -> dict[str, Any]:
    """Return the inner event of a reaction on a message."""
    return {
        "type": kind,
        "user": user,
        "reaction": reaction,
        "item_user": item_user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": event_ts,
    }


def block_action_payload(
    *,
    user: str,
    channel: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    block_id: str = "b",
    team_id: str = "T0TEST",
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a button click on a message; pass `message` to carry the clicked message's content."""
    clicked = message or {"type": "message", "ts": message_ts, "text": "", "user": "UBOT"}
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": "A0TEST",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": new_trigger_id(),
        "team": {"id": team_id, "domain": "test-team"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "dma-upgrades"},
        "message": clicked,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "text": {"type": "plain_text", "text": action_id},
                "action_ts": "1700009999.000200",
            }
        ],
    }


def block_action_body(
    *,
    user: str,
    channel: str,
    message_ts: str,
    action_id: str,
    value: str,
    response_url: str,
    block_id: str = "b",
    team_id: str = "T0TEST",
    message: dict[str, Any] | None = None,
) -> str:
    """Return a button click as Slack POSTs it (a form with one field, payload=<JSON>)."""
    payload = block_action_payload(
        user=user,
        channel=channel,
        message_ts=message_ts,
        action_id=action_id,
        value=value,
        response_url=response_url,
        block_id=block_id,
        team_id=team_id,
        message=message,
    )
    return urlencode({"payload": json.dumps(payload)})


def view_submission_body(*, user: str, view: dict[str, Any], values: dict[str, Any],
                         team_id: str = "T0TEST") -> str:
    """Return a modal's submission as Slack POSTs it: the view, with `values` as its state.

    `values` maps a block id to its input's value: a str for a text input or a selection
    (static select: the option's value; conversations select: a channel id), None when blank.
    """
    state: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        value = values.get(block["block_id"])
        kind = element["type"]
        if kind == "static_select":
            entry = {"type": kind, "selected_option":
                     {"text": {"type": "plain_text", "text": str(value)}, "value": value}
                     if value is not None else None}
        elif kind == "conversations_select":
            entry = {"type": kind, "selected_conversation": value}
        else:
            entry = {"type": kind, "value": value}
        state[block["block_id"]] = {element["action_id"]: entry}
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "test-team"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": "A0TEST",
        "trigger_id": new_trigger_id(),
        "view": {**view, "state": {"values": state}, "hash": "1700000000.abcdef"},
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return urlencode({"payload": json.dumps(payload)})


def home_action_body(*, user: str, action_id: str, value: str, view_id: str = "VHOME",
                     team_id: str = "T0TEST") -> str:
    """Return a button click on the Home tab (no channel, no response_url; a trigger_id)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": "A0TEST",
        "container": {"type": "view", "view_id": view_id},
        "trigger_id": new_trigger_id(),
        "team": {"id": team_id, "domain": "test-team"},
        "view": {"id": view_id, "type": "home", "blocks": [], "state": {"values": {}}},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value,
                     "text": {"type": "plain_text", "text": action_id},
                     "action_ts": "1700009999.000200"}],
    }
    return urlencode({"payload": json.dumps(payload)})
