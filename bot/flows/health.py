"""What /healthz reports: the database, the worker's last tick, the outbox, and Slack.

503 when any of them is down: the database cannot be read; the worker has not ticked for
`stalled_after_s`; the oldest undelivered message is older than `outbox_stuck_after_s`; Slack
has been unreachable for `slack_down_after_s` (the Socket Mode connection closed, or every Web
API call failing, that long). The same reads feed the metrics' gauges at each scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot import metrics
from bot.clock import Clock
from bot.engine.states import RunStatus
from storage import repo
from storage.db import unit_of_work

SLACK_DOWN_AFTER_S = 30.0


@dataclass
class SlackLink:
    """Whether Slack answers: the socket's state and the Web API calls' outcomes, with times."""

    clock: Clock
    down_after_s: float = SLACK_DOWN_AFTER_S
    socket_mode: bool = False
    last_api_ok: datetime | None = None
    api_failing_since: datetime | None = None
    socket_connected: bool = False
    socket_down_since: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.socket_mode:
            self.socket_down_since = self.clock.now()  # until the first connection

    def api_call(self, ok: bool) -> None:
        """Record the outcome of a Web API call (an answer from Slack counts as ok)."""
        now = self.clock.now()
        with self._lock:
            if ok:
                self.last_api_ok, self.api_failing_since = now, None
            elif self.api_failing_since is None:
                self.api_failing_since = now

    def socket(self, connected: bool) -> None:
        """Record the Socket Mode connection's state (sampled, or on a change)."""
        now = self.clock.now()
        with self._lock:
            if connected:
                self.socket_down_since = None
            elif self.socket_connected or self.socket_down_since is None:
                self.socket_down_since = now
            self.socket_connected = connected

    def report(self) -> dict[str, Any]:
        """The Slack part of /healthz."""
        now = self.clock.now()
        with self._lock:
            body: dict[str, Any] = {"last_api_ok": _iso(self.last_api_ok),
                                    "api_failing_s": _age(now, self.api_failing_since)}
            down = (body["api_failing_s"] or 0.0) >= self.down_after_s
            if self.socket_mode:
                body["socket_connected"] = self.socket_connected
                body["socket_down_s"] = _age(now, self.socket_down_since)
                down = down or (body["socket_down_s"] or 0.0) >= self.down_after_s
        body["ok"] = not down
        return body

    def up(self) -> bool:
        """Whether Slack counts as reachable now (the metrics' gauge)."""
        return bool(self.report()["ok"])


@dataclass
class Health:
    """What /healthz reports: database, worker ticks, outbox backlog, Slack."""

    sessions: sessionmaker[Session]
    clock: Clock
    mode: str
    worker_id: str = ""
    stalled_after_s: float = 60.0
    started_at: datetime | None = None
    last_tick: datetime | None = None
    slack: SlackLink | None = None
    outbox_stuck_after_s: float = 900.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ticked(self) -> None:
        """Record that the worker finished a tick (a scheduler listener calls this)."""
        with self._lock:
            self.last_tick = self.clock.now()

    def report(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON body of /healthz."""
        now = self.clock.now()
        body: dict[str, Any] = {"mode": self.mode}
        try:
            with unit_of_work(self.sessions) as session:
                repo.ping(session=session)
                backlog, oldest = repo.outbox_backlog(session=session, now=now)
            body["database"] = {"ok": True}
            body["outbox"] = {"backlog": backlog, "oldest_s": oldest,
                              "ok": (oldest or 0.0) < self.outbox_stuck_after_s}
        except SQLAlchemyError as exc:  # report, don't fail: this is what /healthz is for
            body["database"] = {"ok": False, "error": type(exc).__name__}
        with self._lock:
            last = self.last_tick
        since = (now - (last or self.started_at or now)).total_seconds()
        stalled = since > self.stalled_after_s
        body["worker"] = {"id": self.worker_id, "last_tick": last.isoformat() if last else None,
                          "seconds_since_tick": round(since, 3), "stalled": stalled}
        if self.slack is not None:
            body["slack"] = self.slack.report()
        ok = (body["database"]["ok"] and not stalled and body.get("outbox", {}).get("ok", True)
              and body.get("slack", {}).get("ok", True))
        body["status"] = "ok" if ok else "unavailable"
        return (200 if ok else 503), body

    def stored_state(self) -> metrics.StoredState:
        """Runs by status and the outbox backlog, read now (the metrics' scrape-time gauges)."""
        with unit_of_work(self.sessions) as session:
            return stored_state(session, self.clock.now())


def stored_state(session: Session, now: datetime) -> metrics.StoredState:
    """Count runs by status (every status, zeros included) and measure the outbox backlog."""
    counts = {**dict.fromkeys((s.value for s in RunStatus), 0),
              **repo.runs_by_status(session=session)}
    backlog, oldest = repo.outbox_backlog(session=session, now=now)
    return metrics.StoredState(counts, backlog, oldest)


def state_source(health: Health) -> Callable[[], metrics.StoredState]:
    """The metrics' source of stored state for this process."""
    return health.stored_state


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _age(now: datetime, since: datetime | None) -> float | None:
    return round((now - since).total_seconds(), 3) if since is not None else None
