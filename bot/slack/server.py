"""The bot's HTTP server (waitress): Slack at /slack/events (HTTP mode), /healthz and /metrics.

The health check answers JSON with the database's state, the worker's last tick, the outbox
backlog and Slack's reachability; 503 when any is down (`bot.flows.health`). /metrics is the
process's Prometheus registry in text format. In Socket Mode the same server answers only those
two (`ops_app`), on loopback by default.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from waitress import wasyncore
from waitress.server import create_server

from bot import metrics
from bot.flows.health import Health
from bot.slack.edge import Edge

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
OPS_PATHS = (HEALTH_PATH, METRICS_PATH)


WsgiApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


def wsgi_app(app: App, health: Health, *, signing_secret: str,
             now: Callable[[], float] = time.time) -> WsgiApp:
    """Route GET /healthz and /metrics to the operations app, POST /slack/events to the edge.

    The edge (`bot.slack.edge`) refuses bad requests before anything parses them, then bolt.
    """
    slack = Edge(app, signing_secret, now=now)
    ops = ops_app(health)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path in OPS_PATHS and method == "GET":
            return ops(environ, start_response)
        if path == EVENTS_PATH and method == "POST":
            return slack(environ, start_response)
        return _answer(start_response, 404, b"not found: POST /slack/events, GET /healthz or "
                       b"/metrics\n", "text/plain; charset=utf-8")

    return application


def ops_app(health: Health) -> WsgiApp:
    """GET /healthz (JSON, 200 or 503) and GET /metrics (Prometheus text); 404 otherwise."""

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == HEALTH_PATH and method == "GET":
            status, body = health.report()
            return _answer(start_response, status, json.dumps(body).encode(), "application/json")
        if path == METRICS_PATH and method == "GET":
            return _answer(start_response, 200, metrics.current().exposition(),
                           metrics.CONTENT_TYPE)
        return _answer(start_response, 404, b"not found: GET /healthz or /metrics\n",
                       "text/plain; charset=utf-8")

    return application


_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def _answer(start_response: StartResponse, status: int, data: bytes,
            content_type: str) -> list[bytes]:
    start_response(f"{status} {_REASONS.get(status, '')}".strip(),
                   [("Content-Type", content_type), ("Content-Length", str(len(data)))])
    return [data]


class HttpServer:
    """waitress on a port (0 picks a free one), run in a thread, closed on demand."""

    def __init__(self, application: WsgiApp, *, host: str, port: int, threads: int = 8) -> None:
        self._server = create_server(application, host=host, port=port, threads=threads,
                                     ident="upgradebot")
        self._thread = threading.Thread(target=self._server.run, name="upgradebot-http",
                                        daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.effective_port)  # type: ignore[union-attr]

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def close(self) -> None:
        """Stop accepting, let requests under way finish (a few seconds at most).

        Sockets are closed by the server's own loop thread (through its trigger): closing one
        from here while that thread polls it fails with "Bad file descriptor" in the loop.
        """
        server: Any = self._server
        # The listening socket: nothing new comes in. Closed by the loop thread itself, as is
        # everything below: a socket closed under its select() fails it with EBADF.
        self._in_loop(lambda: wasyncore.dispatcher.close(server))
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
        # Idle keep-alive connections and the trigger: the emptied map ends the loop.
        self._in_loop(lambda: wasyncore.close_all(server._map))
        self._thread.join(timeout=5)

    def _in_loop(self, action: Callable[[], object]) -> None:
        """Run `action` in the server's loop thread (here, when the loop is not running)."""
        if not self._thread.is_alive():
            action()
            return
        done = threading.Event()

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        server: Any = self._server
        server.trigger.pull_trigger(run)
        if not done.wait(timeout=5):
            log.warning("the HTTP server's loop did not run its shutdown step within 5 s")
