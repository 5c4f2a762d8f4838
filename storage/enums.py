"""The values storage's own columns take (outbox, approvals), and strict conversion to any StrEnum.

Run and step statuses belong to the engine (`bot.engine.states`); these belong to storage.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

_E = TypeVar("_E", bound=StrEnum)


class OutboxStatus(StrEnum):
    """Where a queued Slack message stands."""

    PENDING = "pending"  # waiting for its turn (again, after a retry-later)
    SENDING = "sending"  # claimed by a deliverer until its lease (`not_before`) ends
    SENT = "sent"
    SUPERSEDED = "superseded"  # an edit that a newer edit of the same message replaces


class OutboxKind(StrEnum):
    """What a queued Slack message does."""

    POST = "post"
    UPDATE = "update"  # an edit of the run's plan message
    EPHEMERAL = "ephemeral"
    UPLOAD = "upload"  # a file (timeline picture, evidence zip) rendered when it is delivered


class ApprovalKind(StrEnum):
    """What a person's vote on a run says."""

    APPROVE = "approve"
    REJECT = "reject"
    OVERRUN = "overrun"  # let the run go on past its window
    # An operator's acknowledgement of one manual checklist item (bot.engine.guide.CHECKLIST_ACKS).
    ACK_RELEASE_NOTES = "ack:release-notes"
    ACK_BACKUP = "ack:backup"
    ACK_LICENCE_KEYS = "ack:licence-keys"


# Messages not delivered yet: due, or being sent.
UNSENT: frozenset[OutboxStatus] = frozenset({OutboxStatus.PENDING, OutboxStatus.SENDING})


class UnknownValue(ValueError):
    """A value that is not a member of the StrEnum its column or argument takes."""

    def __init__(self, enum: type[StrEnum], value: object, *, where: str = "") -> None:
        known = ", ".join(member.value for member in enum)
        super().__init__(f"unknown {label(enum)} {value!r}{where}; expected one of: {known}")
        self.enum = enum
        self.value = value


def label(enum: type[StrEnum]) -> str:
    """Return how people name the enum's values: RunStatus -> "run status"."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", enum.__name__).lower()


def member(enum: type[_E], value: object, *, where: str = "") -> _E:
    """Return the member of `enum` whose value is `value`; raise UnknownValue if none is."""
    if isinstance(value, enum):
        return value
    if not isinstance(value, str):
        raise UnknownValue(enum, value, where=where)
    try:
        return enum(value)
    except ValueError:
        raise UnknownValue(enum, value, where=where) from None
