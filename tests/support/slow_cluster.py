"""A DMA cluster that answers slowly: an HTTP server on loopback in front of the simulator.

Without an upstream it holds every request and never answers in time (a cluster that accepts
connections and says nothing). With one, it forwards each request to the simulator at once, so
the cluster acts on it, and holds the answers of the requests `slow` picks (a lost answer).
Held answers are released when the server closes.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

HOLD_AT_MOST_S = 120.0  # a held answer is given up after this even if nobody closes the server


class SlowCluster:
    """Clusters behind `url_for(name)` whose answers are held as `slow` says."""

    def __init__(self, upstream: str | None = None,
                 slow: Callable[[str, str], bool] = lambda method, path: True) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.slow = slow
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self.holding = threading.Event()  # set once an answer is being held
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url_for(self, cluster: str) -> str:
        """The API base URL of one cluster, through this server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{cluster}/api/rest"

    def close(self) -> None:
        """Release every held answer and stop serving."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _answer(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, str, bytes]:
        self.requests.append((method, path))
        answer = (503, "application/json", b'{"message": "held"}')
        if self.upstream is not None:
            conn = http.client.HTTPConnection(self.upstream.netloc, timeout=10)
            try:
                conn.request(method, path, body=body or None, headers=headers)
                reply = conn.getresponse()
                answer = (reply.status, reply.getheader("Content-Type") or "", reply.read())
            finally:
                conn.close()
        if self.slow(method, path):
            self.holding.set()
            self._release.wait(HOLD_AT_MOST_S)
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection")}
                status, kind, data = cluster._answer(self.command, self.path, headers, body)
                # The client may have given up long ago: its socket is gone, which is fine.
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                """Stay quiet."""

        return Handler
