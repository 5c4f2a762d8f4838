"""The outbox's sink contract: what a queued message looks like and how a sink refuses one.

A sink sends one message. It raises `RetryLater` when the destination is down or rate-limited;
the message stays queued and nothing behind it in the same thread overtakes it (`bot.delivery`).
Cluster steps never wait for this: they only queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# An edit whose payload is {BOARD: run id} carries no text yet: the deliverer draws the run's
# status board when it sends it. Edits of one board are superseded while they wait (only the
# newest goes), so drawing each when it is queued would mostly be thrown away.
BOARD = "board"


class RetryLater(Exception):
    """The destination cannot take the message now; try again after `seconds`.

    `rate_limited`: the destination said so (a 429), and the wait holds for every message of the
    same kind to the same channel. `uncertain`: the message may have arrived anyway (a timeout,
    a 5xx), so it is looked up before it is sent again.
    """

    def __init__(self, seconds: float, reason: str, *, rate_limited: bool = False,
                 uncertain: bool = False) -> None:
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason
        self.rate_limited = rate_limited
        self.uncertain = uncertain


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
    uncertain: bool = False  # an earlier try may have delivered it: look before sending


class Sink(Protocol):
    """Something that delivers messages (Slack, the console)."""

    def send(self, message: Outgoing) -> str | None:
        """Deliver one message; return its ts when the destination assigns one."""
        ...


@runtime_checkable
class FindsSent(Protocol):
    """A sink that can tell whether a message was delivered after all (Slack, by metadata)."""

    def find_sent(self, message: Outgoing) -> str | None:
        """Return the ts of an earlier delivery of this message, or None if there was none."""
        ...
