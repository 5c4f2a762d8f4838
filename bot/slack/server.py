"""HTTP mode: a small WSGI app (Slack at /slack/events, /healthz) served by waitress.

The health check answers JSON with the database's state, the worker's last tick and the outbox
backlog; 503 when the database cannot be reached or the worker has stopped ticking.
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

from bot.flows.health import Health
from bot.slack.edge import Edge

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


WsgiApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


def wsgi_app(app: App, health: Health, *, signing_secret: str,
             now: Callable[[], float] = time.time) -> WsgiApp:
    """Route GET /healthz to the health check and POST /slack/events through the edge to bolt."""
    slack = Edge(app, signing_secret, now=now)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            status, body = health.report()
            data = json.dumps(body).encode()
            start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
            return [data]
        if environ.get("PATH_INFO") == EVENTS_PATH and environ.get("REQUEST_METHOD") == "POST":
            return slack(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", "9")])
        return [b"Not Found"]

    return application


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
