"""The Socket Mode double speaks Slack's protocol to a raw client and to bolt's handler."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from websockets.sync.client import connect

from tests.support.signing import event_payload, reaction_event, slash_command_payload
from tests.support.slack_double import SlackDouble, clear_slack_env
from tests.support.socket_double import SocketModeDouble


@pytest.fixture(autouse=True)
def _no_proxy_or_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_slack_env(monkeypatch)


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        yield double


@pytest.fixture
def socket(slack: SlackDouble) -> Iterator[SocketModeDouble]:
    with SocketModeDouble() as double:
        double.attach(slack)
        yield double


def test_a_raw_client_gets_hello_then_envelopes_and_its_ack_is_recorded(
    socket: SocketModeDouble,
) -> None:
    envelope_id = socket.send("events_api", {"type": "event_callback"}, retry_attempt=1)
    with connect(socket.url, open_timeout=5) as ws:
        hello = json.loads(ws.recv(timeout=5))
        envelope = json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        ack = socket.wait_for_ack(envelope_id, timeout=5)
        socket.disconnect("warning")
        goodbye = json.loads(ws.recv(timeout=5))

    assert hello["type"] == "hello"
    assert envelope["envelope_id"] == envelope_id
    assert (envelope["type"], envelope["retry_attempt"]) == ("events_api", 1)
    assert ack == {"envelope_id": envelope_id}
    assert goodbye["type"] == "disconnect"
    assert goodbye["reason"] == "warning"
    with pytest.raises(AssertionError, match="not acked"):
        socket.wait_for_ack("never-sent", timeout=0.01)


def test_apps_connections_open_hands_out_the_socket_url_to_app_tokens_only(
    slack: SlackDouble, socket: SocketModeDouble
) -> None:
    opened = WebClient(base_url=slack.base_url).apps_connections_open(app_token="xapp-test")

    assert opened["url"] == socket.url
    assert slack.calls_to("apps.connections.open")[0].token == "xapp-test"


@pytest.fixture
def bolt_app(slack: SlackDouble) -> App:
    client = WebClient(token="xoxb-test", base_url=slack.base_url)
    return App(client=client, signing_secret="unused-in-socket-mode")


@pytest.fixture
def handler(
    bolt_app: App, slack: SlackDouble, socket: SocketModeDouble
) -> Iterator[SocketModeHandler]:
    handler = SocketModeHandler(bolt_app, app_token="xapp-test")
    handler.connect()
    try:
        yield handler
    finally:
        # Closing from the server side first spares the SDK client's 3 s receive timeout.
        handler.client.auto_reconnect_enabled = False
        socket.stop()
        handler.close()


def test_bolt_socket_mode_runs_a_slash_command_and_acks_it(
    bolt_app: App, handler: SocketModeHandler, socket: SocketModeDouble
) -> None:
    seen: list[str] = []
    ran = threading.Event()

    @bolt_app.command("/upgrade")
    def upgrade(ack: Callable[..., None], command: dict) -> None:
        ack(text=f"planning {command['text']}")
        seen.append(command["user_id"])
        ran.set()

    envelope_id = socket.send(
        "slash_commands", slash_command_payload("plan lab 10.2.1"), accepts_response_payload=True
    )

    ack = socket.wait_for_ack(envelope_id, timeout=10)
    assert ran.wait(timeout=5)
    assert seen == ["U0USER"]
    assert ack["payload"]["text"] == "planning plan lab 10.2.1"


def test_bolt_reconnects_after_a_disconnect_and_keeps_receiving(
    bolt_app: App, handler: SocketModeHandler, socket: SocketModeDouble, slack: SlackDouble
) -> None:
    reactions: list[str] = []

    @bolt_app.event("reaction_added")
    def reacted(event: dict) -> None:
        reactions.append(event["reaction"])

    def reaction(name: str, event_id: str) -> dict:
        event = reaction_event(
            "reaction_added", user="UALICE", reaction=name, channel="C0", ts="1.1", item_user="UBOT"
        )
        return event_payload(event, event_id=event_id, event_time=1_700_000_000)

    socket.wait_for_ack(socket.send("events_api", reaction("eyes", "Ev1")), timeout=10)
    socket.disconnect("refresh_requested")
    socket.wait_for_connections(2, timeout=10)
    socket.wait_for_ack(socket.send("events_api", reaction("white_check_mark", "Ev2")), timeout=10)

    slack.wait_for(lambda: len(reactions) == 2, 5, what="both reactions to reach the listener")
    assert reactions == ["eyes", "white_check_mark"]
    assert len(slack.calls_to("apps.connections.open")) == 2
