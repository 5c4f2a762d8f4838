"""A local Socket Mode double: a `websockets` server on loopback that plays Slack's side.

It greets each connection with `hello`, delivers envelopes the test queues with `send()` (each to
one connection, as Slack does), records the acks the app sends back, and can ask the app to
reconnect with a `disconnect` message. `attach(slack_double)` makes the Web API double's
apps.connections.open hand out this server's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from typing import Any, Literal, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.slack_double import SlackDouble

EnvelopeType = Literal["events_api", "slash_commands", "interactive"]


class SocketModeDouble:
    """Slack's end of Socket Mode, served on 127.0.0.1 with a free port."""

    def __init__(self, *, app_id: str = "A0TEST") -> None:
        self.app_id = app_id
        self._cond = threading.Condition()
        self._acks: dict[str, dict[str, Any]] = {}
        self._received: list[dict[str, Any]] = []
        self._connections_opened = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._pumps: dict[ServerConnection, asyncio.Task[None]] = {}
        self._stopped: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server in its own thread with its own event loop."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(timeout=5):
            raise RuntimeError("SocketModeDouble did not start within 5 s")

    def stop(self) -> None:
        """Close every connection and stop the server."""
        if self._thread is None:
            return
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None:
            loop.call_soon_threadsafe(_resolve, stopped)
        self._thread.join(timeout=5)
        self._thread = self._loop = self._queue = self._stopped = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Return the ws:// URL apps.connections.open should hand out."""
        if not self._port:
            raise RuntimeError("SocketModeDouble is not started")
        return f"ws://127.0.0.1:{self._port}/link/?ticket=socket-double&app_id={self.app_id}"

    def attach(self, slack: SlackDouble) -> None:
        """Make `slack`'s apps.connections.open answer with this server's URL."""
        slack.socket_url = self.url

    # -- what a test does --------------------------------------------------------------------

    def send(
        self,
        type: EnvelopeType,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Queue an envelope for the next connection that can take it; return its envelope_id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "accepts_response_payload": accepts_response_payload,
            "payload": payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        loop, queue = self._require_running()
        loop.call_soon_threadsafe(queue.put_nowait, envelope)
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every open connection to reconnect; they get no more envelopes."""
        loop, _ = self._require_running()
        asyncio.run_coroutine_threadsafe(self._disconnect_all(reason), loop).result(timeout=5)

    @property
    def acks(self) -> dict[str, dict[str, Any]]:
        """Return the acks received so far, by envelope_id."""
        with self._cond:
            return dict(self._acks)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Return every message the app sent, acks included, in order."""
        with self._cond:
            return list(self._received)

    @property
    def connections_opened(self) -> int:
        """Return how many WebSocket connections have been accepted so far."""
        with self._cond:
            return self._connections_opened

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the app acks `envelope_id` and return the ack, or fail the test."""
        with self._cond:
            if not self._cond.wait_for(lambda: envelope_id in self._acks, timeout):
                raise AssertionError(
                    f"envelope {envelope_id} not acked within {timeout}s "
                    f"({self._connections_opened} connection(s) opened, "
                    f"{len(self._acks)} other ack(s) received)"
                )
            return self._acks[envelope_id]

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until `count` connections have been opened in all, or fail the test."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._connections_opened >= count, timeout):
                raise AssertionError(
                    f"expected {count} connection(s) within {timeout}s, "
                    f"got {self._connections_opened}"
                )

    # -- the server thread -------------------------------------------------------------------

    def _require_running(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]:
        if self._loop is None or self._queue is None:
            raise RuntimeError("SocketModeDouble is not started")
        return self._loop, self._queue

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(ready))
        finally:
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._stopped = self._loop.create_future()
        # No server-side keepalive pings: the SDK client pings on its own schedule.
        server: Server = await serve(self._serve, "127.0.0.1", 0, ping_interval=None)
        self._port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stopped
        finally:
            server.close()
            await server.wait_closed()

    async def _serve(self, ws: ServerConnection) -> None:
        with self._cond:
            self._connections_opened += 1
            count = self._connections_opened
            self._cond.notify_all()
        try:
            await ws.send(json.dumps(self._hello(count)))
            self._pumps[ws] = asyncio.create_task(self._pump(ws))
            async for raw in ws:
                self._record(raw)
        except ConnectionClosed:
            pass
        finally:
            pump = self._pumps.pop(ws, None)
            if pump is not None:
                pump.cancel()

    async def _pump(self, ws: ServerConnection) -> None:
        assert self._queue is not None
        while True:
            envelope = await self._queue.get()
            try:
                await ws.send(json.dumps(envelope))
            except ConnectionClosed:
                self._queue.put_nowait(envelope)  # another connection will take it
                return

    async def _disconnect_all(self, reason: str) -> None:
        for ws, pump in list(self._pumps.items()):
            # Stop feeding a connection the app is about to drop, so no envelope dies with it.
            pump.cancel()
            del self._pumps[ws]
            message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "double"}}
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps(message))

    def _record(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return  # not a Slack message; the SDK only sends JSON
        with self._cond:
            self._received.append(message)
            if isinstance(message, dict) and "envelope_id" in message:
                self._acks[message["envelope_id"]] = message
            self._cond.notify_all()

    def _hello(self, count: int) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {"host": "socket-double", "build_number": 1},
            "connection_info": {"app_id": self.app_id},
        }


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
