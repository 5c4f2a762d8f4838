"""The planning modal (`/upgrade` with no words, or the App Home's button), as Block Kit views.

Pure builders: the choices (targets from the inventory, versions from the configured packages)
and the values typed so far come in; a view comes out. Field ids are `ids.PlanField`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.engine.planner import Strategy
from bot.messages.blocks import Block, clip, context, mrkdwn, plain, section
from bot.messages.ids import PLAN_MODAL, PlanField

View = dict[str, Any]
TITLE_MAX = 24  # a modal's title, submit and close labels
OPTION_MAX = 75  # an option's text
STRATEGIES = {
    Strategy.AUTO: "auto — let the bot choose (and say why)",
    Strategy.BASIC: "basic — cluster by cluster",
    Strategy.FULL_OUTAGE: "full-outage — complete outage in a window",
    Strategy.INCREMENTAL: "incremental — some service kept, five times as long",
}


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_MAX), "value": value}


def _select(field: PlanField, groups: Sequence[tuple[str, Sequence[tuple[str, str]]]],
            chosen: str | None, placeholder: str) -> dict[str, Any]:
    """A static select; with more than one group, options are grouped under their labels."""
    element: dict[str, Any] = {"type": "static_select", "action_id": field.value,
                               "placeholder": plain(placeholder, 150)}
    everything = [(value, text) for _, options in groups for value, text in options]
    if len(groups) > 1:
        element["option_groups"] = [{"label": plain(label, OPTION_MAX),
                                     "options": [_option(v, t) for v, t in options][:100]}
                                    for label, options in groups if options]
    else:
        element["options"] = [_option(v, t) for v, t in everything][:100]
    match = next(((v, t) for v, t in everything if v == chosen), None)
    if match is not None:
        element["initial_option"] = _option(*match)
    return element


def _text(field: PlanField, value: str | None, placeholder: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": field.value,
                               "placeholder": plain(placeholder, 150)}
    if value:
        element["initial_value"] = value
    return element


def _input(field: PlanField, label: str, element: dict[str, Any], *, optional: bool = False,
           hint: str = "") -> Block:
    block: Block = {"type": "input", "block_id": field.value, "label": plain(label, 2000),
                    "element": element, "optional": optional}
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def plan_modal(*, targets: Sequence[tuple[str, Sequence[tuple[str, str]]]],
               versions: Sequence[str], metadata: str, ask_channel: bool,
               values: Mapping[str, str] | None = None, problem: str = "") -> View:
    """The planning form: target, version, strategy, window start, length and time zone."""
    v = values or {}
    version = (_select(PlanField.VERSION, [("Configured packages", [(x, x) for x in versions])],
                       v.get(PlanField.VERSION), "Choose a version") if versions else
               _text(PlanField.VERSION, v.get(PlanField.VERSION), "e.g. 10.1.0.1"))
    blocks: list[Block] = [section(f"⚠️ {problem}")] if problem else []
    blocks += [
        _input(PlanField.TARGET, "Target",
               _select(PlanField.TARGET, targets, v.get(PlanField.TARGET),
                       "A supercluster or one cluster")),
        _input(PlanField.VERSION, "Version", version,
               hint="" if versions else "No package is configured: the version must already "
                                        "be uploaded on every cluster."),
        _input(PlanField.STRATEGY, "Strategy",
               _select(PlanField.STRATEGY, [("", [(s.value, t) for s, t in STRATEGIES.items()])],
                       v.get(PlanField.STRATEGY) or Strategy.AUTO.value, "auto")),
        _input(PlanField.WINDOW_START, "Window start (local time in the zone below)",
               _text(PlanField.WINDOW_START, v.get(PlanField.WINDOW_START),
                     "YYYY-MM-DDTHH:MM, e.g. 2026-11-28T22:00"), optional=True,
               hint="Leave the window empty to start as soon as the plan is approved "
                    "(a full-outage upgrade needs one)."),
        _input(PlanField.WINDOW_LENGTH, "Window length",
               _text(PlanField.WINDOW_LENGTH, v.get(PlanField.WINDOW_LENGTH),
                     "e.g. 4h, 90m, 2h30m"), optional=True),
        _input(PlanField.TZ, "Time zone",
               _text(PlanField.TZ, v.get(PlanField.TZ) or "UTC", "Area/City, e.g. "
                     "America/Chicago"), optional=True),
    ]
    if ask_channel:
        blocks.append(_input(PlanField.CHANNEL, "Post the plan in", {
            "type": "conversations_select", "action_id": PlanField.CHANNEL.value,
            "filter": {"include": ["public", "private"], "exclude_bot_users": True}}))
    blocks.append(context("The plan is posted for approval like `/upgrade plan`; nothing "
                          "changes on any cluster until it is approved."))
    return {"type": "modal", "callback_id": PLAN_MODAL, "private_metadata": metadata,
            "title": plain("Plan a DMA upgrade", TITLE_MAX),
            "submit": plain("Plan", TITLE_MAX), "close": plain("Cancel", TITLE_MAX),
            "blocks": blocks}


def notice_view(title: str, text: str) -> View:
    """A modal that only says something (reading the clusters, the plan was posted)."""
    return {"type": "modal", "callback_id": PLAN_MODAL, "title": plain(title, TITLE_MAX),
            "close": plain("Close", TITLE_MAX),
            "blocks": [{"type": "section", "text": mrkdwn(clip(text, 3000))}]}
