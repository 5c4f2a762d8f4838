"""What the app registers and calls matches manifest.yml: command, events, actions, scopes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import yaml

from bot.messages.ids import PLAN_MODAL, ActionId
from bot.slack.membership import Membership
from bot.slack.reconcile import Reconciler
from bot.slack.toolkit import InlineExecutor, Toolkit
from handlers import register_all
from tests.support.signing import event_body, view_submission_body
from tests.support.workspace import APPROVERS, OPERATOR, workspace

ROOT = Path(__file__).resolve().parents[2]
# The scope each Web API method needs (slack-notes.md); a method missing here fails the test.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (), "chat.postMessage": ("chat:write",), "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",), "reactions.add": ("reactions:write",),
    "reactions.get": ("reactions:read",), "users.info": ("users:read",),
    "usergroups.users.list": ("usergroups:read",),
    "conversations.info": ("channels:read", "groups:read"), "views.open": (),
    "conversations.history": ("channels:history", "groups:history"),
    "conversations.replies": ("channels:history", "groups:history"),
    "views.update": (), "views.publish": (), "response_url": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "upload": (),  # the POST of a file's bytes to the URL Slack gave: no method, no scope
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))


class Recorder:
    """Stands in for a bolt App and records what gets registered."""

    def __init__(self) -> None:
        self.client = None
        self.commands: list[str] = []
        self.events: list[str] = []
        self.actions: list[str] = []
        self.views: list[str] = []

    def _record(self, into: list[str], name: str, **_: Any) -> Callable[[Any], Any]:
        into.append(name)
        return lambda listener: listener

    def command(self, name: str, **kw: Any) -> Callable[[Any], Any]:
        return self._record(self.commands, name, **kw)

    def event(self, name: str, **kw: Any) -> Callable[[Any], Any]:
        return self._record(self.events, name, **kw)

    def action(self, name: str, **kw: Any) -> Callable[[Any], Any]:
        return self._record(self.actions, name, **kw)

    def view(self, name: str, **kw: Any) -> Callable[[Any], Any]:
        return self._record(self.views, name, **kw)


def test_registered_listeners_are_exactly_the_manifests(tmp_path: Path) -> None:
    recorder = Recorder()
    with workspace(tmp_path) as ws:
        executor: Executor = InlineExecutor()
        register_all(recorder, ws.services,  # type: ignore[arg-type]
                     Toolkit(Membership(ws.app.client), executor))
    declared = manifest()

    assert recorder.commands == [c["command"] for c in declared["features"]["slash_commands"]]
    assert sorted(set(recorder.events)) == sorted(
        declared["settings"]["event_subscriptions"]["bot_events"])
    assert sorted(recorder.actions) == sorted(a.value for a in ActionId)
    # Modal submissions and the Home tab's buttons arrive through interactivity.
    assert recorder.views == [PLAN_MODAL]
    assert declared["settings"]["interactivity"]["is_enabled"] is True
    assert declared["features"]["app_home"]["home_tab_enabled"] is True


def test_every_web_api_method_the_bot_calls_is_covered_by_the_manifests_scopes(
        tmp_path: Path) -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    with workspace(tmp_path) as ws:
        # A tour of every surface: command, reactions, buttons, Home, start-up, outbox.
        ws.command("inventory")
        ws.command("plan lab 10.1.0.1")
        ws.slack.fail("chat.postMessage", status=500)  # the plan's post: outcome unknown
        ws.deliver()
        ws.clock.advance(5)  # looked up in the channel before it is posted again
        ws.react(APPROVERS[0])
        ws.react(OPERATOR)
        Reconciler(ws.services, ws.app.client, ws.membership).run()
        ws.click("plan_approve", user=APPROVERS[2])
        home = {"type": "app_home_opened", "user": OPERATOR, "tab": "home", "event_ts": "1.2"}
        ws.dispatch(event_body(home, event_id="EvHome", event_time=0))
        ws.command("evidence R1")
        ws.command("abort R1")
        ws.slack.fail("chat.postMessage", status=500)  # a thread reply: outcome unknown
        ws.deliver()
        ws.clock.advance(5)  # looked up in the thread before it is posted again
        ws.command("")  # the planning modal, submitted
        view = ws.slack.view(ws.slack.opened_views()[-1])
        ws.dispatch(view_submission_body(user=OPERATOR, view=view, values={
            "target": "lab", "version": "10.1.0.1", "strategy": "auto"}))
        ws.deliver()
        called = {c.method for c in ws.slack.calls}

    unknown = called - METHOD_SCOPES.keys()
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {unknown}"
    needed = {s for method in called for s in METHOD_SCOPES[method]} | {"commands"}
    # Exactly what the code uses: nothing missing, and no scope asked for "just in case".
    assert needed == scopes, (needed - scopes, scopes - needed)
    assert {"chat.postMessage", "chat.update", "reactions.get", "usergroups.users.list",
            "views.publish", "chat.postEphemeral", "views.open", "views.update",
            "conversations.history", "conversations.replies", "files.getUploadURLExternal",
            "upload", "files.completeUploadExternal"} <= called
