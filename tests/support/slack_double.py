"""A local Slack Web API double: an HTTP server on loopback over an in-memory workspace.

Point the real SDK at it (`WebClient(token="xoxb-test", base_url=double.base_url)`); it speaks the
wire format of slack-notes.md (always POST, bearer token, JSON or form bodies) and answers with
Slack's own error names, so code under test sees what it would see against Slack.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Self

import pytest

from tests.support.slack_files import FileUploads
from tests.support.slack_web_api import SlackError, WebApiMethods, _RequestHandler

# Variables that change how slack-sdk and bolt behave behind a test's back (proxies are used even
# for 127.0.0.1; a client id/secret pair silently switches bolt to OAuth).
SLACK_ENV_VARS = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET",
)  # fmt: skip

_Handler = Callable[[dict[str, Any]], dict[str, Any]]


def clear_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the proxy and SLACK_* variables that would redirect or reconfigure the SDK."""
    for name in SLACK_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@dataclass(frozen=True)
class Call:
    """One request the double received; `at` is time.monotonic(), `outcome` "ok" or what failed."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float
    outcome: str = "ok"


@dataclass
class Hold:
    """A call whose effect is applied at once and whose answer waits for `release`."""

    method: str
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Fault:
    remaining: int
    status: int
    error: str
    retry_after: int | None


class SlackDouble(WebApiMethods, FileUploads):
    """A fake Slack workspace served over HTTP on 127.0.0.1 with a free port."""

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T0TEST",
        usergroups_supported: bool = True,
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.usergroups_supported = usergroups_supported
        self.socket_url: str | None = None
        self._lock = threading.RLock()
        self._called = threading.Condition(self._lock)  # notified after every recorded call
        self._calls: list[Call] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._ephemerals: dict[str, list[dict[str, Any]]] = {}
        self._home_views: dict[str, dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}  # modals opened, by view id (as updated)
        self._opened: list[str] = []
        self._responses: dict[str, list[dict[str, Any]]] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._holds: list[Hold] = []
        self._outage = False
        self._next_ts = 1_700_000_000_000_100  # microseconds; one clock for every channel
        self._next_view = 1
        self._files = {}  # file id -> name, length, bytes, share (FileUploads)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_user(bot_user_id, "upgradebot", is_bot=True)
        self._methods: dict[str, _Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "reactions.add": lambda a: self._react(a, add=True),
            "reactions.remove": lambda a: self._react(a, add=False),
            "reactions.get": self._reactions_get,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "apps.connections.open": self._apps_connections_open,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start serving on a free loopback port."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        server.daemon_threads = True
        server.double = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Return the Web API base URL, with the trailing slash WebClient expects."""
        if self._server is None:
            raise RuntimeError("SlackDouble is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def response_url(self, response_id: str) -> str:
        """Return a response_url whose posts are recorded under `response_id`."""
        return f"{self.base_url}response/{response_id}"

    # -- arranging the workspace -------------------------------------------------------------

    def add_user(self, user_id: str, name: str, *, is_bot: bool = False) -> None:
        """Add (or replace) a workspace member."""
        with self._lock:
            self._users[user_id] = {"id": user_id, "name": name, "is_bot": is_bot}

    def add_usergroup(self, group_id: str, members: list[str]) -> None:
        """Add (or replace) a user group with its members."""
        with self._lock:
            self._usergroups[group_id] = list(members)

    def add_channel(self, channel_id: str, name: str, *, is_private: bool = False) -> None:
        """Add a channel the bot is a member of; posting elsewhere is channel_not_found."""
        with self._lock:
            self._channels[channel_id] = {"id": channel_id, "name": name, "private": is_private}
            self._messages.setdefault(channel_id, {})
            self._ephemerals.setdefault(channel_id, [])

    def post_as_user(self, channel: str, text: str, *, user: str) -> str:
        """Post a message as a human would and return its ts."""
        with self._lock:
            msg = self._new_message(self._channel(channel), text, [], user=user)
            return str(msg["ts"])

    def add_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        """React as a human would (the test then sends the reaction_added event itself)."""
        with self._lock:
            self._toggle_reaction(self._message(channel, ts), name, user, add=True)

    def remove_reaction(self, channel: str, ts: str, name: str, user: str) -> None:
        """Withdraw a human's reaction (the test then sends reaction_removed itself)."""
        with self._lock:
            self._toggle_reaction(self._message(channel, ts), name, user, add=False)

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
    ) -> None:
        """Make the next `times` calls of `method` fail: 429, an HTTP status, or an error name."""
        if retry_after is not None or status == 429:
            fault = _Fault(times, 429, "ratelimited", retry_after)
        elif status != 200:
            fault = _Fault(times, status, error or "internal_error", None)
        else:
            fault = _Fault(times, 200, error or "fatal_error", None)
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def hold_answer(self, method: str) -> Hold:
        """Apply the next call of `method` but keep its answer back until the test releases it
        (a caller killed meanwhile never learns that Slack did it)."""
        hold = Hold(method)
        with self._lock:
            self._holds.append(hold)
        return hold

    def wait_if_held(self, method: str) -> None:
        """Called after a call was applied: wait (30 s at most) if a hold is set for it."""
        with self._lock:
            hold = next((h for h in self._holds
                         if h.method == method and not h.arrived.is_set()), None)
            if hold is not None:
                hold.arrived.set()
        if hold is not None:
            hold.release.wait(30)

    def outage(self, on: bool) -> None:
        """Answer every request (auth.test and response_url posts too) with 503 while on."""
        with self._lock:
            self._outage = on

    # -- inspecting --------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Return every request received so far, failed attempts included, in order."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """Return the requests made to one method."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Return the channel's top-level messages in order (current versions)."""
        with self._lock:
            msgs = self._channel_messages(channel).values()
            return [copy.deepcopy(m) for m in msgs if m.get("thread_ts", m["ts"]) == m["ts"]
                    or m.get("subtype") == "thread_broadcast"]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Return the replies to one message in order."""
        with self._lock:
            msgs = self._channel_messages(channel).values()
            return [copy.deepcopy(m) for m in msgs if m.get("thread_ts") == ts and m["ts"] != ts]

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        """Return the current version of one message."""
        with self._lock:
            return copy.deepcopy(self._message(channel, ts))

    def ephemerals(self, channel: str) -> list[dict[str, Any]]:
        """Return the ephemeral messages posted in a channel, in order."""
        with self._lock:
            return copy.deepcopy(self._ephemerals.get(channel, []))

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """Return the Home tab last published for a user, if any."""
        with self._lock:
            return copy.deepcopy(self._home_views.get(user_id))

    def opened_views(self) -> list[str]:
        """Return the ids of the modals opened, in order."""
        with self._lock:
            return list(self._opened)

    def view(self, view_id: str) -> dict[str, Any]:
        """Return a modal as last opened or updated."""
        with self._lock:
            return copy.deepcopy(self._views[view_id])

    def responses_posted(self, response_id: str) -> list[dict[str, Any]]:
        """Return the bodies posted to response_url(response_id), in order."""
        with self._lock:
            return copy.deepcopy(self._responses.get(response_id, []))

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 10.0, *, what: str = ""
    ) -> None:
        """Wait until `predicate` holds (checked at every call), or fail saying what was seen."""
        deadline = time.monotonic() + timeout
        with self._called:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = "\n  ".join(_describe(c) for c in self.calls[-15:]) or "(none)"
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what or 'the condition'}; "
                        f"last calls to the Slack double:\n  {recent}"
                    )
                # Woken by the next call; the short cap covers predicates on other state.
                self._called.wait(min(left, 0.1))

    # -- the HTTP side (called by _RequestHandler threads) -----------------------------------

    def handle(
        self, method: str, args: dict[str, Any], token: str | None, *, response_id: str = ""
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one Web API call or response_url post: (HTTP status, JSON body, headers)."""
        with self._lock:
            status, body, headers = self._answer(method, args, token, response_id)
            outcome = "ok" if body.get("ok") else f"{status} {body.get('error')}"
            self._calls.append(Call(method, copy.deepcopy(args), token, time.monotonic(), outcome))
            self._called.notify_all()
            return status, body, headers

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None, response_id: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self._outage:
            return 503, {"ok": False, "error": "service_unavailable"}, {}
        fault = self._take_fault(method)
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return fault.status, {"ok": False, "error": fault.error}, headers
        if method == "response_url":
            self._responses.setdefault(response_id, []).append(copy.deepcopy(args))
            return 200, {"ok": True}, {}
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise SlackError("unknown_method")
            self._check_token(method, token)
            return 200, {"ok": True, **handler(args)}, {}
        except SlackError as exc:
            return 200, {"ok": False, "error": str(exc)}, {}

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.pop(0)
        return fault

    @staticmethod
    def _check_token(method: str, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        # An app-level token opens sockets and does nothing else; a bot token cannot open them.
        if token.startswith("xapp-") != (method == "apps.connections.open"):
            raise SlackError("not_allowed_token_type")


def _describe(call: Call) -> str:
    keys = ("channel", "ts", "timestamp", "thread_ts", "name", "user", "text")
    shown = {k: str(call.args[k])[:60] for k in keys if k in call.args}
    return f"{call.method} {shown} -> {call.outcome}"
