"""`upgradebot serve`: the Slack app, the worker and the outbox in one process, until stopped.

Start-up: migrate the database, check the bot token, re-read the reactions of every open plan,
start the worker's scheduler (plus jobs for outbox delivery, membership refresh and event-id
purge), then serve Slack by Socket Mode (SLACK_APP_TOKEN set) or HTTP. Stop (SIGTERM), within
`STOP_BUDGET_S`: the worker claims nothing more, Slack requests stop coming, running jobs and plan
reads finish or are abandoned at the deadline, the outbox gets one last try if time is left.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_sdk import WebClient

from bot.app.core import build_core, dma_clients, make_worker, open_database
from bot.app.slack import build_app, check_token, web_client
from bot.clock import Clock, SystemClock
from bot.config import Environment, Settings
from bot.delivery import Delivery
from bot.flows.health import Health
from bot.services import ServiceError, Services
from bot.slack.edge import GuardedSocketModeHandler
from bot.slack.membership import Membership
from bot.slack.reconcile import Reconciler
from bot.slack.server import HttpServer, wsgi_app
from bot.slack.sink import SlackSink
from bot.slack.toolkit import Toolkit
from bot.worker.runner import Worker
from bot.worker.scheduler import TICK_JOB, Deadline, finish_within, start_worker, stop_worker

log = logging.getLogger(__name__)
DELIVERY_JOB = "upgradebot-outbox"
RECONCILE_JOB = "upgradebot-reconcile"
MEMBERSHIP_JOB = "upgradebot-membership"
PURGE_JOB = "upgradebot-purge-event-ids"
LAST_DELIVERY_MIN_S = 0.5  # the outbox's last try at a stop needs at least this long
SOCKET_CLOSE_WAIT_S = 0.5  # enough for the Socket Mode disconnect itself
_deliveries: dict[str, Delivery] = {}
_reconcilers: dict[str, Reconciler] = {}


def deliver_outbox(owner: str) -> None:
    """Scheduler job: send what the outbox may send now (failures are retried next time)."""
    delivery = _deliveries.get(owner)
    if delivery is not None:
        delivery.deliver()


def reconcile_reactions(owner: str, scheduler: BackgroundScheduler) -> None:
    """Scheduler job: retry the start-up reaction re-read until every plan could be read."""
    reconciler = _reconcilers.get(owner)
    if reconciler is not None and reconciler.run().complete:
        scheduler.remove_job(RECONCILE_JOB)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: HTTP address (ignored in Socket Mode), pacing of the outbox."""

    host: str = "0.0.0.0"  # Slack must reach it: put a TLS-terminating proxy in front
    port: int = 3000
    delivery_every_s: float = 0.5
    min_interval_s: float = 1.0
    edit_interval_s: float = 3.0


def serve(settings: Settings, env: Environment, *, stop: threading.Event,
          options: ServeOptions = ServeOptions(), clock: Clock | None = None,
          announce: Callable[[str], None] = print) -> tuple[str, ...]:
    """Run the bot until `stop` is set; return what the stop abandoned (nothing: all finished)."""
    _require(env)
    engine, sessions = open_database(env.database_url)
    core = build_core(settings, sessions=sessions, clock=clock or SystemClock(),
                      clients=dma_clients(settings, env))
    services, clock = core.services, core.clock
    api = web_client(env, blocking_retries=True)
    fast = web_client(env, blocking_retries=False, timeout_s=5)
    # The outbox's own client answers within half the outbox lease: no process takes a message
    # over while another may still be sending it.
    lease_s = settings.timing.outbox_lease.total_seconds()
    send_s = min(5.0, lease_s / 2)
    outbox = web_client(env, blocking_retries=False, timeout_s=send_s)
    outbox.retry_handlers = []  # a resend inside the SDK could post twice: the outbox decides
    membership = Membership(fast)
    kit = Toolkit(membership, ThreadPoolExecutor(4, "upgradebot-reads"))
    app = build_app(services=services, client=api,
                    signing_secret=(env.slack_signing_secret.get_secret_value()
                                    if env.slack_signing_secret else None), kit=kit,
                    verify_token=check_token(api))
    reconciler = Reconciler(services, api, membership)
    complete = _start_up_reconcile(reconciler, membership, settings)
    scheduler, worker = start_worker(make_worker(core))
    health = Health(sessions, clock, "socket" if env.socket_mode else "http",
                    worker_id=worker.worker_id, started_at=clock.now(),
                    stalled_after_s=max(60.0, 30 * settings.timing.tick.total_seconds()))
    _add_jobs(scheduler, worker.worker_id, health, options, complete, Delivery(
        sessions, SlackSink(outbox), clock=clock, min_interval_s=options.min_interval_s,
        edit_interval_s=options.edit_interval_s, owner=worker.worker_id,
        lease_s=lease_s, send_budget_s=send_s), reconciler,
        membership, settings, services)
    close: Callable[[], None] | None = None
    try:
        close = (_serve_socket(app, env, api, announce) if env.socket_mode
                 else _serve_http(app, health, options, announce, env))
        stop.wait()
    finally:
        abandoned = _shut_down(close, scheduler, worker, kit)
        engine.dispose()
    announce("upgradebot stopped")
    return abandoned


def _require(env: Environment) -> None:
    missing = [name for name, value in (
        ("SLACK_BOT_TOKEN", env.slack_bot_token), ("DMA_USERNAME", env.dma_username),
        ("DMA_PASSWORD", env.dma_password),
        ("SLACK_SIGNING_SECRET", env.slack_signing_secret or env.slack_app_token)) if not value]
    if missing:
        raise ServiceError(f"set {', '.join(missing)} (SLACK_SIGNING_SECRET is needed in HTTP "
                           "mode; SLACK_APP_TOKEN selects Socket Mode)")


def _start_up_reconcile(reconciler: Reconciler, membership: Membership,
                        settings: Settings) -> bool:
    membership.refresh([*settings.slack.operators, *settings.slack.approvers])
    return reconciler.run().complete


def _add_jobs(scheduler: BackgroundScheduler, owner: str, health: Health,
              options: ServeOptions, reconciled: bool, delivery: Delivery,
              reconciler: Reconciler, membership: Membership, settings: Settings,
              services: Services) -> None:
    def on_job(event: JobExecutionEvent) -> None:
        if event.job_id == TICK_JOB:
            health.ticked()

    scheduler.add_listener(on_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    _deliveries[owner] = delivery
    _reconcilers[owner] = reconciler
    common = {"replace_existing": True, "max_instances": 1, "coalesce": True,
              "misfire_grace_time": 30}
    scheduler.add_job(deliver_outbox, "interval", args=[owner], id=DELIVERY_JOB,
                      seconds=options.delivery_every_s, **common)
    scheduler.add_job(membership.refresh, "interval",
                      args=[[*settings.slack.operators, *settings.slack.approvers]],
                      id=MEMBERSHIP_JOB, seconds=membership.ttl_s / 2, **common)
    scheduler.add_job(services.events.forget_old, "interval", id=PURGE_JOB, hours=1, **common)
    if not reconciled:
        scheduler.add_job(reconcile_reactions, "interval", args=[owner, scheduler],
                          id=RECONCILE_JOB, seconds=30, **common)


def _serve_http(app: App, health: Health, options: ServeOptions,
                announce: Callable[[str], None], env: Environment) -> Callable[[], None]:
    secret = env.slack_signing_secret.get_secret_value() if env.slack_signing_secret else ""
    server = HttpServer(wsgi_app(app, health, signing_secret=secret), host=options.host,
                        port=options.port)
    server.start()
    announce(f"upgradebot listening on http://{options.host}:{server.port} "
             "(Slack: /slack/events, health: /healthz)")
    return server.close


def _serve_socket(app: App, env: Environment, client: WebClient,
                  announce: Callable[[str], None]) -> Callable[[], None]:
    token = env.slack_app_token.get_secret_value() if env.slack_app_token else None
    handler = GuardedSocketModeHandler(app, app_token=token, web_client=client)
    handler.connect()
    announce("upgradebot connected to Slack by Socket Mode")

    def close() -> None:
        handler.client.auto_reconnect_enabled = False
        # close() disconnects at once, then waits for its session thread's fixed 3 s receive
        # timeout: let that wait run out in the background, the process ends without it.
        closing = threading.Thread(target=handler.close, daemon=True,
                                   name="upgradebot-stop-socket")
        closing.start()
        closing.join(SOCKET_CLOSE_WAIT_S)

    return close


def _shut_down(close_slack: Callable[[], None] | None, scheduler: BackgroundScheduler,
               worker: Worker, kit: Toolkit) -> tuple[str, ...]:
    """Stop within the budget; return what had to be abandoned."""
    deadline = Deadline.for_stop()
    worker.stop()  # first: no new visit starts while the rest closes

    def close_slack_then_reads() -> None:
        if close_slack is not None:
            close_slack()
        kit.background.shutdown(wait=True)  # a plan being read finishes and is answered

    closing = threading.Thread(target=close_slack_then_reads, daemon=True,
                               name="upgradebot-stop-slack")
    closing.start()  # meanwhile the worker's jobs finish
    abandoned = list(stop_worker(scheduler, worker, deadline))
    closing.join(deadline.left())
    if closing.is_alive():
        abandoned.append("Slack requests and plan reads under way")
    _reconcilers.pop(worker.worker_id, None)
    delivery = _deliveries.pop(worker.worker_id, None)
    if delivery is not None and deadline.left() >= LAST_DELIVERY_MIN_S and not finish_within(
            lambda: _deliver_last(delivery), "outbox", deadline):
        abandoned.append("the last outbox delivery")  # its messages stay queued, none is lost
    return tuple(abandoned)


def _deliver_last(delivery: Delivery) -> None:
    try:
        delivery.deliver(rounds=3)  # what is due goes now; the rest waits in the database
    except Exception:  # stopping anyway: the messages stay queued
        log.exception("last outbox delivery failed; messages stay queued")
