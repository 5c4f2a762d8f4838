"""The outbox's sink contract: what a queued message looks like and how a sink refuses one.

A sink sends one message. It raises `RetryLater` when the destination is down or rate-limited;
the message stays queued and nothing behind it in the same thread overtakes it (`bot.delivery`).
Cluster steps never wait for this: they only queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The destination cannot take the message now; try again after `seconds`."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


@dataclass(frozen=True)
class Outgoing:
    """One message to deliver, with where it goes."""

    id: int
    kind: str  # post | update | ephemeral | upload
    channel: str | None
    run_name: str | None
    thread_ts: str | None  # the plan message's ts for thread replies and edits
    thread: bool
    payload: Mapping[str, Any]


class Sink(Protocol):
    """Something that delivers messages (Slack, the console)."""

    def send(self, message: Outgoing) -> str | None:
        """Deliver one message; return its ts when the destination assigns one."""
        ...
