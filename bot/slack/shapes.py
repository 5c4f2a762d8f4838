"""The fields each kind of Slack payload must carry before any listener sees it (pure).

Slack's payloads are signed, but a signature says who sent a body, not that it is well formed:
a payload without a field a listener reads would otherwise end in a KeyError deep in a listener
and an incident. `problem` names the first missing or mistyped field, or None when the payload
has every field the bot's listeners read; the guard that calls it acknowledges such a payload
and logs one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.messages.ids import EVENTS, PLAN_MODAL, SLASH_COMMAND, ActionId

# (path, what is expected): a path is a tuple of keys; an int key indexes a list.
Need = tuple[tuple[str | int, ...], str]

_COMMAND: tuple[Need, ...] = (
    (("command",), "text"), (("user_id",), "id"), (("channel_id",), "id"),
    (("text",), "optional text"), (("response_url",), "url"), (("trigger_id",), "text"))
_ACTIONS: tuple[Need, ...] = (
    (("user",), "object"), (("user", "id"), "id"), (("actions",), "list"),
    (("actions", 0), "object"), (("actions", 0, "action_id"), "text"),
    (("actions", 0, "value"), "text"), (("channel",), "object"), (("channel", "id"), "id"),
    (("container",), "object"), (("container", "message_ts"), "ts"),
    (("response_url",), "url"), (("trigger_id",), "text"))
# A click on the Home tab: no channel, no message, no response_url; the view it sits on.
_HOME_ACTIONS: tuple[Need, ...] = (
    (("user",), "object"), (("user", "id"), "id"), (("actions",), "list"),
    (("actions", 0), "object"), (("actions", 0, "action_id"), "text"),
    (("actions", 0, "value"), "text"), (("container",), "object"),
    (("container", "view_id"), "id"), (("trigger_id",), "text"))
_VIEW_SUBMISSION: tuple[Need, ...] = (
    (("user",), "object"), (("user", "id"), "id"), (("view",), "object"),
    (("view", "id"), "id"), (("view", "callback_id"), "text"),
    (("view", "state"), "object"), (("view", "state", "values"), "object"),
    (("view", "private_metadata"), "optional text"))
_EVENT: tuple[Need, ...] = ((("event_id",), "text"), (("event",), "object"),
                            (("event", "type"), "text"))
_REACTION: tuple[Need, ...] = (
    (("event", "user"), "id"), (("event", "reaction"), "text"), (("event", "item"), "object"),
    (("event", "item", "type"), "text"), (("event", "item_user"), "optional id"))
_MESSAGE_ITEM: tuple[Need, ...] = ((("event", "item", "channel"), "id"),
                                   (("event", "item", "ts"), "ts"))
_HOME: tuple[Need, ...] = ((("event", "user"), "id"), (("event", "tab"), "optional text"))
_EVENTS: Mapping[str, tuple[Need, ...]] = {
    "reaction_added": _REACTION, "reaction_removed": _REACTION, "app_home_opened": _HOME}
ACTION_IDS = frozenset(a.value for a in ActionId)
BOLT_ANSWERS = frozenset({"url_verification", "ssl_check"})  # bolt's own middleware answers
MAX_TEXT = 4000  # Slack caps a slash command's text at 4,000 characters
MAX_ID = 64  # user, channel and team ids are about 11 characters; leave room, refuse a novel


def problem(body: Mapping[str, Any]) -> str | None:
    """Say which field a payload lacks or has of the wrong type; None when it is whole.

    A payload the bot has no listener for (another command, action or event) is a problem
    too: bolt would answer it 404 and log a page of suggestions that quote the payload.
    """
    if "event" in body and not isinstance(body["event"], Mapping):
        return "`event` should be object"  # bolt's own middleware reads it, whatever the type
    if "command" in body:
        return _check(body, _COMMAND) or (
            None if body["command"] == SLASH_COMMAND else f"`command` is not {SLASH_COMMAND}")
    kind = body.get("type")
    if kind == "block_actions":
        home = isinstance(body.get("container"), Mapping) \
            and body["container"].get("type") == "view"
        return _check(body, _HOME_ACTIONS if home else _ACTIONS) or (
            None if body["actions"][0]["action_id"] in ACTION_IDS
            else "`actions.0.action_id` names no button of the bot")
    if kind == "event_callback":
        return _event(body)
    if kind == "view_submission":
        return _check(body, _VIEW_SUBMISSION) or (
            None if body["view"]["callback_id"] == PLAN_MODAL
            else "`view.callback_id` names no form of the bot")
    if isinstance(kind, str) and kind in BOLT_ANSWERS:
        return None
    return "`type` is not a kind of payload the bot handles"


def _event(body: Mapping[str, Any]) -> str | None:
    found = _check(body, _EVENT)
    if found is not None:
        return found
    event = body["event"]
    if event["type"] not in EVENTS:
        return "`event.type` is not an event the bot subscribes to"
    found = _check(body, _EVENTS[event["type"]])
    if found is None and event["type"].startswith("reaction_") \
            and event["item"]["type"] == "message":
        found = _check(body, _MESSAGE_ITEM)
    return found


def _check(body: Mapping[str, Any], needs: Sequence[Need]) -> str | None:
    for path, expected in needs:
        value = _at(body, path)
        if not _fits(value, expected):
            where = ".".join(str(p) for p in path)
            got = "nothing" if value is _MISSING else type(value).__name__
            return f"`{where}` should be {expected.removeprefix('optional ')}, got {got}"
    return None


_MISSING = object()


def _at(body: Any, path: tuple[str | int, ...]) -> Any:
    value = body
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return _MISSING
            value = value[key]
        elif isinstance(value, Mapping) and key in value:
            value = value[key]
        else:
            return _MISSING
    return value


def _fits(value: Any, expected: str) -> bool:
    if expected.startswith("optional "):
        if value is _MISSING or value is None:
            return True
        expected = expected.removeprefix("optional ")
    if expected == "object":
        return isinstance(value, Mapping)
    if expected == "list":
        return isinstance(value, list) and bool(value)
    if not isinstance(value, str):
        return False
    if expected == "id":
        return 0 < len(value) <= MAX_ID and value.isalnum()
    if expected == "ts":
        head, dot, tail = value.partition(".")
        return bool(dot) and head.isdigit() and tail.isdigit() and len(value) <= 32
    if expected == "url":
        return value.startswith(("https://", "http://")) and len(value) <= 2048
    return len(value) <= MAX_TEXT
