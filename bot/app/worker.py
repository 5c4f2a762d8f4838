"""`upgradebot worker`: the worker alone against a shared database, until stopped."""

from __future__ import annotations

import threading
from collections.abc import Callable

from bot.app.core import build_core, dma_clients, make_worker, open_database
from bot.clock import SystemClock
from bot.config import Environment, Settings
from bot.worker.scheduler import Deadline, start_worker, stop_worker


def run_worker(settings: Settings, env: Environment, *, stop: threading.Event,
               worker_id: str | None = None,
               announce: Callable[[str], None] = print) -> tuple[str, ...]:
    """Tick the worker until `stop` is set; return what the stop abandoned."""
    engine, sessions = open_database(env.database_url)
    core = build_core(settings, sessions=sessions, clock=SystemClock(),
                      clients=dma_clients(settings, env))
    scheduler, worker = start_worker(make_worker(core, worker_id=worker_id))
    announce(f"worker {worker.worker_id} running")
    try:
        stop.wait()
        return stop_worker(scheduler, worker, Deadline.for_stop())
    finally:
        engine.dispose()
