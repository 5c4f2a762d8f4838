"""Deliver queued messages: in order per run, edits coalesced, paced per channel, never lost.

A sink sends one message. It raises `RetryLater` when the destination is down or rate-limited;
the message stays pending with `not_before` set, and nothing behind it in the same thread
overtakes it. Cluster steps never wait for this: they only queue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from storage import repo
from storage.db import unit_of_work
from storage.models import OutboxMessage, Run

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
    kind: str  # post | update | ephemeral
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


class Outbox:
    """Drains the outbox table into a sink."""

    def __init__(self, sessions: sessionmaker[Session], sink: Sink, *,
                 min_interval_s: float = 1.0) -> None:
        self.sessions = sessions
        self.sink = sink
        self.min_interval = timedelta(seconds=min_interval_s)
        self._last_post: dict[str | None, datetime] = {}

    def deliver(self, now: datetime, limit: int = 50) -> int:
        """Send what is due; return how many messages were delivered."""
        sent = 0
        blocked: set[int | None] = set()  # runs whose earlier message is waiting: keep order
        with unit_of_work(self.sessions) as session:
            pending = repo.pending_messages(session=session, now=now, limit=limit)
            latest_update = {m.run_id: m.id for m in pending if m.kind == "update"}
            for msg in pending:
                if msg.kind == "update" and latest_update.get(msg.run_id) != msg.id:
                    msg.status = "superseded"  # a newer edit of the same message follows
                    continue
                if msg.run_id in blocked or not self._paced(msg, now):
                    blocked.add(msg.run_id)
                    continue
                if self._send(session, msg, now):
                    sent += 1
                else:
                    blocked.add(msg.run_id)
        return sent

    def _paced(self, msg: OutboxMessage, now: datetime) -> bool:
        if msg.kind != "post":
            return True
        last = self._last_post.get(msg.channel)
        return last is None or now - last >= self.min_interval

    def _send(self, session: Session, msg: OutboxMessage, now: datetime) -> bool:
        run = session.get(Run, msg.run_id) if msg.run_id is not None else None
        outgoing = Outgoing(id=msg.id, kind=msg.kind, channel=msg.channel,
                            run_name=run.name if run else None,
                            thread_ts=run.message_ts if run else None, thread=msg.thread,
                            payload=dict(msg.payload))
        try:
            ts = self.sink.send(outgoing)
        except RetryLater as exc:
            msg.attempts += 1
            msg.last_error = exc.reason
            msg.not_before = now + timedelta(seconds=max(exc.seconds, 1.0))
            log.info("message %s delayed %.0fs: %s", msg.id, exc.seconds, exc.reason)
            return False
        msg.attempts += 1
        msg.status = "sent"
        msg.sent_at = now
        msg.slack_ts = ts
        if msg.kind == "post":
            self._last_post[msg.channel] = now
        if run is not None and msg.key == f"{run.id}:plan" and ts:
            run.message_ts = ts
        return True

