"""An in-process Slack workspace around the real app: signed requests in, the Slack double out.

The app is built by the production factory with an inline listener executor (dispatch returns
after the listener) and an inline background executor; the engine runs in virtual time (FakeClock)
against the DMA simulator in process, as in tests/support/engine_harness.py.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.app.slack import build_app
from bot.clock import FakeClock
from bot.config import Settings, load_settings
from bot.delivery import Delivery
from bot.engine.states import HELD, TERMINAL_RUN, RunStatus
from bot.sandbox import build_simulator
from bot.services import RunSummary, Services
from bot.simulator import DmaSimulator
from bot.slack.membership import Membership
from bot.slack.middleware import UnixClock
from bot.slack.sink import SlackSink
from bot.slack.toolkit import InlineExecutor, Toolkit
from bot.worker.runner import Worker
from storage.db import make_engine, make_session_factory
from tests.support.databases import fresh_sqlite
from tests.support.engine_harness import drive_worker, serving, simulated_clients
from tests.support.pausing import pause_on
from tests.support.signing import (
    block_action_body,
    event_body,
    reaction_event,
    sign,
    slash_command_body,
)
from tests.support.slack_double import SlackDouble

CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "slack.yml"
SECRET = "test-signing-secret"
CHANNEL = "C0UPGRADES"
OPERATOR = "U0OPERATOR"  # also an approver (through the group): the usual requester
APPROVERS = ("U0APPROVER1", "U0APPROVER2", "U0APPROVER3")
VISITOR = "U0VISITOR"
DEPLOY_BOT = "U0DEPLOYBOT"  # a bot that sits in the approvers' group
ONCALL = ("U0ONCALL",)
SIM_USER, SIM_PASSWORD = "admin", "sim-secret-pw"
STOP = {s.value for s in (*TERMINAL_RUN, *HELD, RunStatus.FAILED)}


def populate(slack: SlackDouble) -> None:
    """The people, groups and channel of the tests' workspace."""
    slack.add_channel(CHANNEL, "dma-upgrades")
    for user in (OPERATOR, *APPROVERS, VISITOR, *ONCALL):
        slack.add_user(user, user.lower())
    slack.add_user(DEPLOY_BOT, "deploybot", is_bot=True)
    slack.add_usergroup("S0OPERATORS", [OPERATOR])
    slack.add_usergroup("S0APPROVERS", [OPERATOR, "U0APPROVER1", "U0APPROVER2", DEPLOY_BOT])
    slack.add_usergroup("S0ONCALL", list(ONCALL))


@dataclass
class Reply:
    """What Slack would show for one request: the ack and what came by response_url."""

    status: int
    ack: dict[str, Any] | None
    responses: list[dict[str, Any]]

    def texts(self) -> list[str]:
        """The ack's text (if any) then every response's text."""
        first = [self.ack["text"]] if self.ack and self.ack.get("text") else []
        return first + [str(r.get("text", "")) for r in self.responses]


@dataclass
class Workspace:
    """The app, the engine and the Slack double, wired as in production."""

    slack: SlackDouble
    settings: Settings
    clock: FakeClock
    sim: DmaSimulator
    sessions: sessionmaker[Session]
    services: Services
    app: App
    delivery: Delivery
    worker: Worker
    membership: Membership
    _ids: Iterator[int] = field(default_factory=itertools.count)

    # -- what Slack sends ----------------------------------------------------------------------

    def dispatch(self, body: str, *, timestamp: int | None = None,
                 headers: dict[str, str] | None = None) -> BoltResponse:
        """Sign a raw body as Slack does and dispatch it to the app."""
        signed: dict[str, str | Sequence[str]] = {
            **sign(SECRET, body, int(time.time()) if timestamp is None else timestamp),
            **(headers or {})}
        return self.app.dispatch(BoltRequest(body=body, headers=signed))

    def command(self, text: str, *, user: str = OPERATOR) -> Reply:
        """Type `/upgrade text`."""
        rid = f"cmd-{next(self._ids)}"
        body = slash_command_body(text, user_id=user, channel_id=CHANNEL,
                                  response_url=self.slack.response_url(rid))
        response = self.dispatch(body)
        return Reply(response.status, _json(response.body), self.slack.responses_posted(rid))

    def react(self, user: str, *, run: str = "R1", reaction: str = "white_check_mark",
              removed: bool = False, event_id: str | None = None,
              retry: int | None = None) -> BoltResponse:
        """React on a run's plan message (or take the reaction back), then send the event."""
        ts = self.plan_ts(run)
        if retry is None:  # a retry re-sends an event; the reaction itself happened once
            change = self.slack.remove_reaction if removed else self.slack.add_reaction
            change(CHANNEL, ts, reaction, user)
        kind: Literal["reaction_added", "reaction_removed"] = \
            "reaction_removed" if removed else "reaction_added"
        event = reaction_event(kind, user=user, reaction=reaction, channel=CHANNEL, ts=ts,
                               item_user="UBOT")
        raw = event_body(event, event_id=event_id or f"Ev{next(self._ids):08d}",
                         event_time=int(time.time()))
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} \
            if retry else {}
        return self.dispatch(raw, headers=extra)

    def click(self, action_id: str, *, user: str, run: str = "R1",
              value: str | None = None, message_ts: str | None = None) -> Reply:
        """Click a button on a run's plan message (or on the message `message_ts`)."""
        rid = f"act-{next(self._ids)}"
        summary = self.services.summary(run)
        body = block_action_body(user=user, channel=CHANNEL,
                                 message_ts=message_ts or self.plan_ts(run),
                                 action_id=action_id, value=value or summary.name,
                                 response_url=self.slack.response_url(rid))
        response = self.dispatch(body)
        return Reply(response.status, _json(response.body), self.slack.responses_posted(rid))

    def acknowledge(self, run: str = "R1", *, user: str = OPERATOR) -> list[Reply]:
        """An operator clicks each checklist button of the plan message (release notes, backup,
        licence keys)."""
        return [self.click(action_id, user=user, run=run)
                for action_id in ("checklist_release_notes", "checklist_backup",
                                  "checklist_licence_keys")]

    # -- the engine ----------------------------------------------------------------------------

    def deliver(self) -> int:
        """Deliver what the outbox holds."""
        return self.delivery.deliver()

    def tick(self) -> None:
        """One worker pass, then deliver."""
        self.worker.tick()
        self.deliver()

    def drive(self, run: str, *, stop: Iterable[str] = STOP, max_hours: float = 12.0) -> str:
        """Tick and jump virtual time to the worker's next due moment until the run stops."""
        return drive_worker(self.worker, self.clock, deliver=self.deliver,
                            status=lambda: self.services.summary(run).status, stop=set(stop),
                            max_hours=max_hours, what=run)

    # -- what people see -----------------------------------------------------------------------

    def run(self, name: str = "R1") -> RunSummary:
        """The run as stored."""
        return self.services.summary(name)

    def plan_ts(self, run: str = "R1") -> str:
        """The ts of the run's plan message (delivered first if needed)."""
        if self.run(run).message_ts is None:
            self.deliver()
        ts = self.run(run).message_ts
        assert ts, f"{run}'s plan message was never posted"
        return ts

    def plan_message(self, run: str = "R1") -> dict[str, Any]:
        """The plan message (or status board) as it shows now."""
        return self.slack.message(CHANNEL, self.plan_ts(run))

    def thread(self, run: str = "R1") -> list[str]:
        """The texts of the replies in the run's thread."""
        return [m["text"] for m in self.slack.thread(CHANNEL, self.plan_ts(run))]

    def private(self, user: str) -> list[str]:
        """The ephemeral messages a user was sent in the channel."""
        return [e["text"] for e in self.slack.ephemerals(CHANNEL) if e["user"] == user]


def _json(body: str) -> dict[str, Any] | None:
    try:
        value = json.loads(body) if body else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def buttons_of(message: dict[str, Any]) -> dict[str, str]:
    """The buttons of a message: action_id -> value."""
    return {e["action_id"]: e["value"] for b in message.get("blocks", [])
            if b["type"] == "actions" for e in b["elements"]}


def block_text(message: dict[str, Any]) -> str:
    """Every piece of text in a message's blocks, joined."""
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


@contextmanager
def workspace(directory: Path, *, usergroups: bool = True, faults: Iterable[str] = (),
              unix_now: Callable[[], float] | None = None) -> Iterator[Workspace]:
    """Build the workspace on a fresh SQLite database in `directory`.

    `unix_now` is the clock the app checks request timestamps against (default: real time).
    """
    url = fresh_sqlite(directory, "bot.db")
    settings = load_settings(CONFIG)
    clock = FakeClock()
    sim = build_simulator(settings, clock=clock, faults=faults, username=SIM_USER,
                          password=SIM_PASSWORD)
    engine = make_engine(url)
    with SlackDouble(usergroups_supported=usergroups) as slack, serving(sim, http=False):
        populate(slack)
        sessions = make_session_factory(engine)
        clients = simulated_clients(settings, sim, username=SIM_USER, password=SIM_PASSWORD)
        services = Services(settings=settings, sessions=sessions, clock=clock, clients=clients,
                            pause=pause_on(clock))
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        membership = Membership(client)
        kit = Toolkit(membership, InlineExecutor())
        app = build_app(services=services, client=client,
                        signing_secret=SECRET, kit=kit, listener_executor=InlineExecutor(),
                        signature_clock=UnixClock(unix_now) if unix_now else None)
        sink = SlackSink(client, files=services.render_file)
        delivery = Delivery(sessions, sink, clock=clock, min_interval_s=0, edit_interval_s=0,
                            boards=services.render_board)
        worker = Worker(session_factory=sessions, settings=settings, clock=clock,
                        clients=clients, worker_id="test-worker")
        yield Workspace(slack, settings, clock, sim, sessions, services, app, delivery, worker,
                        membership)
    engine.dispose()
