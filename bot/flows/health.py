"""What /healthz reports: the database, the worker's last tick, the outbox backlog."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import Clock
from storage import repo
from storage.db import unit_of_work


@dataclass
class Health:
    """What /healthz reports: database, worker ticks, outbox backlog."""

    sessions: sessionmaker[Session]
    clock: Clock
    mode: str
    worker_id: str = ""
    stalled_after_s: float = 60.0
    started_at: datetime | None = None
    last_tick: datetime | None = None
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
            body["outbox"] = {"backlog": backlog, "oldest_s": oldest}
        except SQLAlchemyError as exc:  # report, don't fail: this is what /healthz is for
            body["database"] = {"ok": False, "error": type(exc).__name__}
        with self._lock:
            last = self.last_tick
        since = (now - (last or self.started_at or now)).total_seconds()
        stalled = since > self.stalled_after_s
        body["worker"] = {"id": self.worker_id, "last_tick": last.isoformat() if last else None,
                          "seconds_since_tick": round(since, 3), "stalled": stalled}
        ok = body["database"]["ok"] and not stalled
        body["status"] = "ok" if ok else "unavailable"
        return (200 if ok else 503), body
