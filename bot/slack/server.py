"""HTTP mode: a small WSGI app (Slack at /slack/events, /healthz) served by waitress.

The health check answers JSON with the database's state, the worker's last tick and the outbox
backlog; 503 when the database cannot be reached or the worker has stopped ticking.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress import wasyncore
from waitress.server import create_server

from bot.flows.health import Health

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


WsgiApp = Callable[["WSGIEnvironment", "StartResponse"], Iterable[bytes]]


def wsgi_app(app: App, health: Health) -> WsgiApp:
    """Route GET /healthz to the health check and everything else to bolt."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            status, body = health.report()
            data = json.dumps(body).encode()
            start_response(f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                           [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
            return [data]
        return slack(environ, start_response)

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
        if not self._thread.is_alive():
            server.close()
            return
        stopped = threading.Event()
        server.trigger.pull_trigger(lambda: _stop_accepting(server, stopped))
        stopped.wait(timeout=2)
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=5)
        # Closing every socket in the map, the trigger's own included, ends the loop.
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        self._thread.join(timeout=5)


def _stop_accepting(server: Any, stopped: threading.Event) -> None:
    """In the loop thread: close the listening socket, so nothing new comes in."""
    try:
        server.accepting = False
        server.del_channel()
        server.socket.close()
    finally:
        stopped.set()
