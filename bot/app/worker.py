"""`upgradebot worker`: the worker alone against a shared database, until stopped.

With `--port` it also serves its own /healthz (database, ticks, outbox) and /metrics, so that
each of several workers sharing one database can be watched.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent

from bot import metrics
from bot.app.core import (
    build_core,
    dma_clients,
    make_worker,
    open_database,
    wait_until_stopped,
)
from bot.clock import SystemClock
from bot.config import Environment, Settings
from bot.flows.health import Health
from bot.slack.server import HttpServer, ops_app
from bot.worker.scheduler import TICK_JOB, Deadline, start_worker, stop_worker


def run_worker(settings: Settings, env: Environment, *, stop: threading.Event,
               worker_id: str | None = None, announce: Callable[[str], None] = print,
               host: str = "127.0.0.1", port: int | None = None) -> tuple[str, ...]:
    """Tick the worker until `stop` is set; return what the stop abandoned."""
    engine, sessions = open_database(env.database_url)
    clock = SystemClock()
    core = build_core(settings, sessions=sessions, clock=clock,
                      clients=dma_clients(settings, env))
    scheduler, worker = start_worker(make_worker(core, worker_id=worker_id))
    announce(f"worker {worker.worker_id} running")
    server: HttpServer | None = None
    try:
        if port is not None:
            health = Health(sessions, clock, "worker", worker_id=worker.worker_id,
                            started_at=clock.now(),
                            stalled_after_s=max(60.0, 30 * settings.timing.tick.total_seconds()))

            def on_job(event: JobExecutionEvent) -> None:
                if event.job_id == TICK_JOB:
                    health.ticked()

            scheduler.add_listener(on_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
            metrics.watch_state(health.stored_state)
            server = HttpServer(ops_app(health), host=host, port=port)
            server.start()
            announce(f"worker {worker.worker_id} listening on http://{host}:{server.port} "
                     "(health: /healthz, metrics: /metrics)")
        wait_until_stopped(stop)
        return stop_worker(scheduler, worker, Deadline.for_stop())
    finally:
        if server is not None:
            server.close()
        metrics.watch_state(None)
        engine.dispose()
