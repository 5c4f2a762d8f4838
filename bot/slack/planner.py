"""The planning modal's Slack side: its choices, reading a submission, and checking each field.

A submission is checked field by field with the command's own rules (the inventory's names,
the version syntax, the strategies, the window and time-zone parsers), so the modal refuses what
`/upgrade plan` refuses, and says so beside the field (view_submission `errors`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.engine.errors import UserError
from bot.engine.planner import Strategy
from bot.engine.versions import parse_version
from bot.engine.windows import Window, parse_window, zone
from bot.messages.blocks import clip
from bot.messages.ids import PlanField
from bot.messages.modal import View, plan_modal

ERROR_MAX = 150  # Slack shows a field's error in a line under it: keep it short


@dataclass(frozen=True)
class PlanForm:
    """A checked submission: what `/upgrade plan` would have been given."""

    target: str
    version: str
    strategy: Strategy
    window: Window | None
    channel: str | None


def target_choices(settings: Settings) -> list[tuple[str, list[tuple[str, str]]]]:
    """The inventory as grouped options: each supercluster with its clusters, then the rest."""
    groups = [(f"Supercluster {sc.name}",
               [(sc.name, f"{sc.name} (the whole supercluster)")]
               + [(c.name, f"{c.name} (one cluster of {sc.name})") for c in sc.clusters])
              for sc in settings.superclusters]
    if settings.clusters:
        groups.append(("Stand-alone clusters",
                       [(c.name, f"{c.name} (stand-alone)") for c in settings.clusters]))
    return groups


def planning_view(settings: Settings, *, channel: str | None,
                  values: Mapping[str, str] | None = None, problem: str = "") -> View:
    """The modal for this inventory; it asks for a channel when none is known."""
    where = settings.slack.channel or channel
    return plan_modal(targets=target_choices(settings), versions=sorted(settings.packages),
                      metadata=json.dumps({"channel": where or ""}), ask_channel=where is None,
                      values=values, problem=problem)


def submitted(view: Mapping[str, Any]) -> dict[str, str]:
    """The values of a view_submission, field by field (empty when left blank)."""
    state = (view.get("state") or {}).get("values") or {}
    values: dict[str, str] = {}
    for field in PlanField:
        item = (state.get(field.value) or {}).get(field.value) or {}
        chosen = (item.get("selected_option") or {}).get("value")
        value = chosen or item.get("selected_conversation") or item.get("value") or ""
        values[field.value] = str(value).strip()
    return values


def channel_of(view: Mapping[str, Any]) -> str | None:
    """The channel the modal was opened for (kept in its private_metadata)."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    return (data.get("channel") or None) if isinstance(data, dict) else None


def check(values: Mapping[str, str], settings: Settings,
          channel: str | None) -> tuple[PlanForm | None, dict[str, str]]:
    """Check every field as the command does; return the form, or the errors by field."""
    errors: dict[str, str] = {}

    def guard(field: PlanField, test: Any) -> Any:
        try:
            return test()
        except (UserError, ValueError) as exc:
            errors.setdefault(field.value, clip(str(exc), ERROR_MAX))
            return None

    get = values.get
    target = guard(PlanField.TARGET, lambda: settings.target(get("target") or "").name)
    guard(PlanField.VERSION, lambda: parse_version(get("version") or ""))
    strategy = guard(PlanField.STRATEGY, lambda: Strategy(get("strategy") or "auto"))
    tz = get("tz") or "UTC"
    guard(PlanField.TZ, lambda: zone(tz))
    window = _window(get("window_start") or "", get("window_length") or "", tz, errors)
    where = settings.slack.channel or channel or get("channel") or None
    if where is None:
        errors[PlanField.CHANNEL.value] = "choose the channel where the plan is posted"
    if errors:
        return None, errors
    return PlanForm(target, get("version") or "", strategy, window, where), {}


def _window(start: str, length: str, tz: str, errors: dict[str, str]) -> Window | None:
    """The window from its two fields, each checked by the command's window parser."""
    if not start and not length:
        return None
    if not start:
        errors[PlanField.WINDOW_START.value] = "give the window's start too, e.g. 2026-11-28T22:00"
        return None
    if not length:
        errors[PlanField.WINDOW_LENGTH.value] = "give the window's length too, e.g. 4h"
        return None
    checks = ((PlanField.WINDOW_START, f"{start}/1h", tz if PlanField.TZ.value not in errors
               else "UTC"), (PlanField.WINDOW_LENGTH, f"2000-01-01T00:00/{length}", "UTC"))
    for field, text, zone_name in checks:
        try:
            parse_window(text, zone_name)
        except UserError as exc:
            # The parser quotes what it was given: quote the field, not the combined text.
            typed = start if field is PlanField.WINDOW_START else length
            errors[field.value] = clip(str(exc).replace(f"'{text}'", f"'{typed}'"), ERROR_MAX)
    if errors:
        return None
    return parse_window(f"{start}/{length}", tz)

