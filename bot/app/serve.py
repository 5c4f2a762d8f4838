"""`upgradebot serve`: the Slack app, the worker and the outbox in one process, until stopped.

Start-up: migrate the database, check the bot token, re-read the reactions of every open plan,
start the worker's scheduler (plus jobs for outbox delivery, membership refresh, event-id purge
and watching Slack's reachability), then serve Slack by Socket Mode (SLACK_APP_TOKEN set) or
HTTP. Both modes serve /healthz and /metrics on the HTTP port (Socket Mode: loopback by
default, and nothing else there). Stop (SIGTERM), within
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
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot import metrics
from bot.app.core import (
    build_core,
    dma_clients,
    make_worker,
    open_database,
    wait_until_stopped,
)
from bot.app.slack import build_app, check_token, web_client
from bot.clock import Clock, SystemClock
from bot.config import Environment, Settings
from bot.delivery import Delivery
from bot.flows.health import Health, SlackLink
from bot.services import ServiceError, Services
from bot.slack.edge import GuardedSocketModeHandler
from bot.slack.membership import Membership
from bot.slack.reconcile import Reconciler
from bot.slack.server import HttpServer, WsgiApp, ops_app, wsgi_app
from bot.slack.sink import SlackSink
from bot.slack.toolkit import Toolkit
from bot.worker.runner import Worker
from bot.worker.scheduler import TICK_JOB, Deadline, finish_within, start_worker, stop_worker

log = logging.getLogger(__name__)
DELIVERY_JOB = "upgradebot-outbox"
RECONCILE_JOB = "upgradebot-reconcile"
MEMBERSHIP_JOB = "upgradebot-membership"
PURGE_JOB = "upgradebot-purge-event-ids"
SLACK_WATCH_JOB = "upgradebot-watch-slack"
SLACK_WATCH_EVERY_S = 2.0  # how often the socket's state is sampled and an idle API probed
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


HTTP_HOST = "0.0.0.0"  # Slack must reach it: put a TLS-terminating proxy in front
SOCKET_HOST = "127.0.0.1"  # only health and metrics: nothing outside needs them by default


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: HTTP address (None: by mode), pacing of the outbox, Slack's down rule."""

    host: str | None = None
    port: int = 3000
    delivery_every_s: float = 0.5
    min_interval_s: float = 1.0
    edit_interval_s: float = 3.0
    slack_down_after_s: float = 30.0

    def host_for(self, socket_mode: bool) -> str:
        """The address to listen on: given, else loopback in Socket Mode and all in HTTP."""
        return self.host or (SOCKET_HOST if socket_mode else HTTP_HOST)


def serve(settings: Settings, env: Environment, *, stop: threading.Event,
          options: ServeOptions = ServeOptions(), clock: Clock | None = None,
          announce: Callable[[str], None] = print) -> tuple[str, ...]:
    """Run the bot until `stop` is set; return what the stop abandoned (nothing: all finished)."""
    _require(env)
    engine, sessions = open_database(env.database_url)
    core = build_core(settings, sessions=sessions, clock=clock or SystemClock(),
                      clients=dma_clients(settings, env))
    services, clock = core.services, core.clock
    link = SlackLink(clock, down_after_s=options.slack_down_after_s,
                     socket_mode=env.socket_mode)
    api = web_client(env, blocking_retries=True, reachable=link.api_call)
    fast = web_client(env, blocking_retries=False, timeout_s=5, reachable=link.api_call)
    # The outbox's own client answers within half the outbox lease (no process takes a message
    # over while another may still be sending it) and never resends by itself (the SDK's resend
    # after a dropped connection could post twice: the outbox looks the post up first).
    lease_s = settings.timing.outbox_lease.total_seconds()
    send_s = min(5.0, lease_s / 2)
    outbox = web_client(env, blocking_retries=False, timeout_s=send_s, reachable=link.api_call)
    outbox.retry_handlers = [h for h in outbox.retry_handlers
                             if not isinstance(h, ConnectionErrorRetryHandler)]
    membership = Membership(fast)
    kit = Toolkit(membership, ThreadPoolExecutor(4, "upgradebot-reads"))
    app = build_app(services=services, client=api,
                    signing_secret=(env.slack_signing_secret.get_secret_value()
                                    if env.slack_signing_secret and not env.socket_mode
                                    else None), kit=kit,
                    verify_token=check_token(api))
    reconciler = Reconciler(services, api, membership)
    complete = _start_up_reconcile(reconciler, membership, settings)
    scheduler, worker = start_worker(make_worker(core))
    health = Health(sessions, clock, "socket" if env.socket_mode else "http",
                    worker_id=worker.worker_id, started_at=clock.now(),
                    stalled_after_s=max(60.0, 30 * settings.timing.tick.total_seconds()),
                    slack=link)
    metrics.watch_state(health.stored_state, link.up)
    _add_jobs(scheduler, worker.worker_id, health, options, complete, Delivery(
        sessions, SlackSink(outbox, files=services.render_file), clock=clock,
        boards=services.render_board,
        min_interval_s=options.min_interval_s,
        edit_interval_s=options.edit_interval_s, owner=worker.worker_id,
        lease_s=lease_s, send_budget_s=send_s), reconciler,
        membership, settings, services)
    closers: list[Callable[[], None]] = []
    try:
        host = options.host_for(env.socket_mode)
        if env.socket_mode:
            closers.append(_serve_http(ops_app(health), host, options.port, announce,
                                       "health: /healthz, metrics: /metrics"))
            closers.insert(0, _serve_socket(app, env, api, link, scheduler, fast, announce))
        else:
            secret = (env.slack_signing_secret.get_secret_value()
                      if env.slack_signing_secret else "")
            closers.append(_serve_http(wsgi_app(app, health, signing_secret=secret), host,
                                       options.port, announce,
                                       "Slack: /slack/events, health: /healthz, metrics: "
                                       "/metrics"))
            _watch(scheduler, None, link, fast)
        wait_until_stopped(stop)
    finally:
        abandoned = _shut_down(closers, scheduler, worker, kit)
        metrics.watch_state(None)
        engine.dispose()
    announce("upgradebot stopped")
    return abandoned


def _require(env: Environment) -> None:
    """Socket Mode needs the bot and app tokens; HTTP mode the bot token and signing secret."""
    missing = [name for name, value in (
        ("SLACK_BOT_TOKEN", env.slack_bot_token), ("DMA_USERNAME", env.dma_username),
        ("DMA_PASSWORD", env.dma_password)) if not value]
    if not env.socket_mode and not env.slack_signing_secret:
        missing.append("SLACK_SIGNING_SECRET")
    if missing:
        mode = ("Socket Mode (SLACK_APP_TOKEN is set) needs SLACK_BOT_TOKEN" if env.socket_mode
                else "HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or set "
                     "SLACK_APP_TOKEN for Socket Mode, which needs no signing secret)")
        raise ServiceError(f"set {', '.join(missing)}: {mode}")


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


def _serve_http(application: WsgiApp, host: str, port: int, announce: Callable[[str], None],
                paths: str) -> Callable[[], None]:
    server = HttpServer(application, host=host, port=port)
    server.start()
    announce(f"upgradebot listening on http://{host}:{server.port} ({paths})")
    return server.close


def _serve_socket(app: App, env: Environment, client: WebClient, link: SlackLink,
                  scheduler: BackgroundScheduler, probe: WebClient,
                  announce: Callable[[str], None]) -> Callable[[], None]:
    token = env.slack_app_token.get_secret_value() if env.slack_app_token else None
    handler = GuardedSocketModeHandler(app, app_token=token, web_client=client)
    handler.connect()
    link.socket(handler.client.is_connected())
    _watch(scheduler, handler.client.is_connected, link, probe)
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


def _watch(scheduler: BackgroundScheduler, connected: Callable[[], bool] | None,
           link: SlackLink, probe: WebClient) -> None:
    scheduler.add_job(watch_slack, "interval", args=[connected, link, probe],
                      id=SLACK_WATCH_JOB, seconds=SLACK_WATCH_EVERY_S, replace_existing=True,
                      max_instances=1, coalesce=True, misfire_grace_time=30)


def watch_slack(connected: Callable[[], bool] | None, link: SlackLink, probe: WebClient) -> None:
    """Scheduler job: sample the socket's state; probe Slack when the Web API has been quiet.

    Without traffic nothing would tell a dead Slack from a quiet one: `auth.test` (cheap,
    generously rate-limited) is called when no call has succeeded for the down period's half.
    """
    if connected is not None:
        link.socket(connected())
    quiet_since = link.last_api_ok
    now = link.clock.now()
    if quiet_since is None or (now - quiet_since).total_seconds() >= link.down_after_s / 2:
        try:
            probe.auth_test()
        except Exception as exc:  # counted and reported by the client's observer already
            log.debug("Slack probe failed (%s)", type(exc).__name__)


def _shut_down(closers: list[Callable[[], None]], scheduler: BackgroundScheduler,
               worker: Worker, kit: Toolkit) -> tuple[str, ...]:
    """Stop within the budget; return what had to be abandoned."""
    deadline = Deadline.for_stop()
    worker.stop()  # first: no new visit starts while the rest closes

    def close_slack_then_reads() -> None:
        for close in closers:
            close()
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
