"""The simulator's HTTP server: a threading server that hands each request to a dispatcher."""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bot.simulator.api import Reply

# method, target (path and query), headers (lower-case keys), body, client address -> answer
Dispatch = Callable[[str, str, Mapping[str, str], bytes, str], Reply]
# A request left without an answer is held at most this long (the client gives up well before).
HANG_LIMIT_S = 30.0


class _Handler(BaseHTTPRequestHandler):
    # One request per connection: a stopped simulator leaves no kept-alive connection answering.
    protocol_version = "HTTP/1.0"
    server_version = "DMA-Simulator/1.0"
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.dispatch(self.command, self.path, headers, body,
                                     self.client_address[0])
        if reply.hang:
            self._hold()
        if not reply.answered:
            self.close_connection = True  # close without a byte: the client sees a reset
            return
        self.send_response(reply.status)
        for name, value in reply.wire_headers():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.payload())

    def _hold(self) -> None:
        """Answer nothing until the client gives up (closes), the server stops, or a bound."""
        waited = 0.0
        while waited < HANG_LIMIT_S and not self.server.closing.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if readable:  # the client closed its end (or sent more, which nobody reads)
                return
            waited += 0.1

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the simulator keeps its own request log (and never logs credentials)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # many clients at once (rehearsals poll every cluster)

    def __init__(self, address: tuple[str, int], dispatch: Dispatch) -> None:
        super().__init__(address, _Handler)
        self.dispatch = dispatch
        self.closing = threading.Event()


class HttpFrontEnd:
    """Serve a dispatcher over HTTP on a background thread."""

    def __init__(self, host: str, port: int, dispatch: Dispatch) -> None:
        self._server = _Server((host, port), dispatch)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="dma-simulator", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """Return the host and port actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
