"""DmaClient over real loopback sockets: how real refused, dropped and silent servers are classed.

`responses` replaces the transport, so it cannot show that requests/urllib3 really raise what the
client expects, nor that urllib3 does not resend a request by itself. These tests can.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from bot.dma.client import DmaClient
from bot.dma.errors import DmaError, DmaNotReachable

PASSWORD = "Tr0ub4dor&3-dma"


class MisbehavingServer:
    """Accept connections on loopback, read each request, then close it or never answer."""

    def __init__(self, mode: str) -> None:
        self.mode = mode  # "close" or "hang"
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                self.connections += 1
                conn.settimeout(1.0)
                received = b""
                while b"\r\n\r\n" not in received:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    received += chunk
                if self.mode == "hang":
                    # Hold the connection open without answering until the client gives up.
                    self._stop.wait(timeout=2.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self._listener.close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A caller's session that would resend anything, POST included, if the client let it."""
    with requests.Session() as s:
        eager = HTTPAdapter(max_retries=Retry(total=3, allowed_methods=None))
        s.mount("http://", eager)
        yield s


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(session: requests.Session, sleeps: list[float]) -> Callable[..., DmaClient]:
    def build(port: int, **kwargs: Any) -> DmaClient:
        return DmaClient(f"http://127.0.0.1:{port}/dallas/api/rest", username="admin",
                         password=PASSWORD, sleep=sleeps.append, session=session, name="dallas",
                         **kwargs)
    return build


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[MisbehavingServer]:
    srv = MisbehavingServer(request.param)
    yield srv
    srv.stop()


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return int(s.getsockname()[1])


def test_a_closed_port_is_refused_and_a_post_is_retried(
        make: Callable[..., DmaClient], sleeps: list[float]) -> None:
    client = make(closed_port(), retries=1, timeout=1.0)
    with pytest.raises(DmaNotReachable) as info:
        client.apply_upgrade()
    assert info.value.reason == "refused" and not info.value.request_sent
    assert sleeps == [0.2]  # retried once: nothing had been sent
    assert client.can_log_in() is False


@pytest.mark.parametrize("server", ["close"], indirect=True)
def test_a_dropped_post_is_sent_exactly_once(make: Callable[..., DmaClient],
                                             server: MisbehavingServer,
                                             sleeps: list[float]) -> None:
    client = make(server.port, retries=3, timeout=1.0)
    with pytest.raises(DmaNotReachable) as info:
        client.apply_upgrade()
    assert info.value.reason == "dropped" and info.value.request_sent
    assert server.connections == 1 and sleeps == []
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize("server", ["close"], indirect=True)
def test_a_dropped_get_is_retried(make: Callable[..., DmaClient], server: MisbehavingServer,
                                  sleeps: list[float]) -> None:
    client = make(server.port, retries=2, timeout=1.0)
    with pytest.raises(DmaNotReachable) as info:
        client.status()
    assert info.value.reason == "dropped"
    assert server.connections == 3 and sleeps == [0.2, 0.4]


@pytest.mark.parametrize("server", ["hang"], indirect=True)
def test_a_post_without_answer_times_out_once(make: Callable[..., DmaClient],
                                              server: MisbehavingServer,
                                              sleeps: list[float]) -> None:
    client = make(server.port, retries=3, timeout=0.2)
    with pytest.raises(DmaNotReachable) as info:
        client.rollback()
    assert info.value.reason == "timeout" and info.value.request_sent
    assert server.connections == 1 and sleeps == []


def test_the_proxy_the_environment_names_is_used_with_the_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured (read once per client, not per request), credentials included."""
    seen: list[tuple[str, str | None]] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.requestline, self.headers.get("Authorization")))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = DmaClient("http://dma-dallas.example/api/rest", username="admin",
                           password=PASSWORD, retries=0, timeout=2.0)
        for _ in range(2):
            with pytest.raises(DmaError):
                client.installed_software()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert [line for line, _ in seen] == [
        "GET http://dma-dallas.example/api/rest/installed-software HTTP/1.1"] * 2
    assert all(auth and auth.startswith("Basic ") for _, auth in seen)
