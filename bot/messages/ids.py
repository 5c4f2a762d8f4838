"""The Slack surface of the bot: command, action ids, events, scopes and button references.

`manifest.yml` declares the same command, events and scopes;
tests/messages/test_ids_and_manifest.py keeps the two in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SLASH_COMMAND: Final = "/upgrade"

# Only the events the bot listens to; each one must also be subscribed in manifest.yml.
EVENTS: Final = ("reaction_added", "reaction_removed", "app_home_opened")

# Exactly what the bot calls (see slack-notes.md): adding a scope means reinstalling the app.
BOT_SCOPES: Final = (
    "commands",
    "chat:write",
    "reactions:read",
    "users:read",
    "usergroups:read",
    "channels:history",
    "groups:history",
    "files:write",
)


class ActionId(StrEnum):
    """The `action_id` of every button the bot renders."""

    APPROVE = "plan_approve"
    REJECT = "plan_reject"
    APPROVE_OVERRUN = "overrun_approve"
    RETRY = "run_retry"
    ABORT = "run_abort"
    RESUME = "run_resume"
    ACKNOWLEDGE = "escalation_ack"
    ROLLBACK = "run_rollback"  # value R<run>/S<escalated step>: that cluster's rollback plan
    OPEN_PLANNER = "planner_open"  # the App Home's "Plan an upgrade"
    # One button per manual checklist item (bot.engine.guide.CHECKLIST_ACKS); value: the run.
    ACK_RELEASE_NOTES = "checklist_release_notes"
    ACK_BACKUP = "checklist_backup"
    ACK_LICENCE_KEYS = "checklist_licence_keys"


# The checklist item each acknowledgement button stands for.
ACK_ITEMS: dict[ActionId, str] = {
    ActionId.ACK_RELEASE_NOTES: "release-notes", ActionId.ACK_BACKUP: "backup",
    ActionId.ACK_LICENCE_KEYS: "licence-keys"}


# The planning modal: its callback id, and one block (whose input's action_id is the same) per
# field; view_submission errors are keyed by these block ids.
PLAN_MODAL: Final = "plan_modal"


class PlanField(StrEnum):
    """The planning modal's inputs."""

    TARGET = "target"
    VERSION = "version"
    STRATEGY = "strategy"
    WINDOW_START = "window_start"
    WINDOW_LENGTH = "window_length"
    TZ = "tz"
    CHANNEL = "channel"


# "R12" or "R12/S3": short (button values are capped at 2000 characters) and readable in logs,
# matching the run names users see in messages.
_RUN_REF = re.compile(r"R([1-9][0-9]{0,8})(?:/S([1-9][0-9]{0,8}))?")
MAX_ID = 999_999_999  # run and step ids fit PostgreSQL's INTEGER


@dataclass(frozen=True)
class RunRef:
    """A run (and optionally one of its steps) carried in a button's `value`."""

    run_id: int
    step_id: int | None = None

    def __post_init__(self) -> None:
        _require_positive("run_id", self.run_id)
        if self.step_id is not None:
            _require_positive("step_id", self.step_id)

    def encode(self) -> str:
        """Render the reference as a button value such as "R12" or "R12/S3"."""
        return f"R{self.run_id}" if self.step_id is None else f"R{self.run_id}/S{self.step_id}"

    @classmethod
    def decode(cls, value: str) -> RunRef:
        """Parse a button value made by `encode`, raising ValueError on anything else."""
        match = _RUN_REF.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(
                f"not a run reference: {value!r} (expected 'R<run id>' or 'R<run id>/S<step id>')"
            )
        step = match.group(2)
        return cls(int(match.group(1)), int(step) if step is not None else None)


def _require_positive(name: str, value: object) -> None:
    # bool is an int subclass; RunRef(True) would otherwise encode as "RTrue".
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_ID}, got {value!r}")
