"""A local Slack Web API double: an HTTP server on loopback over an in-memory workspace.

Point the real SDK at it (`WebClient(token="xoxb-test", base_url=double.base_url)`); it speaks the
wire format of slack-notes.md (always POST, bearer token, JSON or form bodies) and answers with
Slack's own error names, so code under test sees what it would see against Slack.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl

import pytest

# Variables that change how slack-sdk and bolt behave behind a test's back (proxies are used even
# for 127.0.0.1; a client id/secret pair silently switches bolt to OAuth).
SLACK_ENV_VARS = (
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
    "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET",
)  # fmt: skip

# Arguments whose values are JSON documents; in form bodies they arrive as JSON strings.
_JSON_ARGS = frozenset({"blocks", "attachments", "view", "metadata"})
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


class SlackError(Exception):
    """A Slack error name, answered as {"ok": false, "error": name}."""


@dataclass
class _Fault:
    remaining: int
    status: int
    error: str
    retry_after: int | None


class SlackDouble:
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
        self._outage = False
        self._next_ts = 1_700_000_000_000_100  # microseconds; one clock for every channel
        self._next_view = 1
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
            "views.open": self._views_open,
            "views.publish": self._views_publish,
            "views.update": self._views_update,
            "apps.connections.open": self._apps_connections_open,
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

    # -- workspace lookups -------------------------------------------------------------------

    def _channel(self, channel: Any) -> str:
        if not isinstance(channel, str) or channel not in self._channels:
            raise SlackError("channel_not_found")
        return channel

    def _channel_messages(self, channel: str) -> dict[str, dict[str, Any]]:
        if channel not in self._messages:
            raise KeyError(f"unknown channel {channel!r}; add_channel() it first")
        return self._messages[channel]

    def _message(self, channel: Any, ts: Any) -> dict[str, Any]:
        msg = self._messages.get(self._channel(channel), {}).get(str(ts))
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def _new_ts(self) -> str:
        value, self._next_ts = self._next_ts, self._next_ts + 100
        return f"{value // 1_000_000}.{value % 1_000_000:06d}"

    def _new_message(
        self, channel: str, text: str, blocks: list[Any], *, user: str, thread_ts: Any = None
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "message", "ts": self._new_ts(), "user": user}
        if user == self.bot_user_id:
            msg["bot_id"] = self.bot_id
        msg.update(text=text, blocks=blocks, reactions=[])
        if thread_ts is not None:
            parent = self._message(channel, thread_ts)
            root = self._message(channel, parent.get("thread_ts", parent["ts"]))
            root["thread_ts"] = root["ts"]
            root["reply_count"] = root.get("reply_count", 0) + 1
            msg["thread_ts"] = root["ts"]
        self._messages[channel][msg["ts"]] = msg
        return msg

    @staticmethod
    def _public(msg: dict[str, Any]) -> dict[str, Any]:
        # Slack leaves "reactions" out of a message that has none.
        out = copy.deepcopy(msg)
        if not out.get("reactions"):
            out.pop("reactions", None)
        return out

    @staticmethod
    def _toggle_reaction(msg: dict[str, Any], name: str, user: str, *, add: bool) -> None:
        name = name.strip(":")
        reactions: list[dict[str, Any]] = msg["reactions"]
        entry = next((r for r in reactions if r["name"] == name), None)
        if add:
            if entry is None:
                entry = {"name": name, "users": [], "count": 0}
                reactions.append(entry)
            if user in entry["users"]:
                raise SlackError("already_reacted")
            entry["users"].append(user)
        else:
            if entry is None or user not in entry["users"]:
                raise SlackError("no_reaction")
            entry["users"].remove(user)
            if not entry["users"]:
                reactions.remove(entry)
        if entry in reactions:
            entry["count"] = len(entry["users"])

    # -- Web API methods ---------------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://test-team.slack.com/",
            "team": "Test Team",
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            raise SlackError("no_text")
        msg = self._new_message(
            channel,
            args.get("text", ""),
            args.get("blocks") or [],
            user=self.bot_user_id,
            thread_ts=args.get("thread_ts"),
        )
        if "metadata" in args:
            msg["metadata"] = args["metadata"]
        if args.get("thread_ts") and args.get("reply_broadcast") in (True, "true", "1"):
            msg["subtype"] = "thread_broadcast"  # shown in the channel too
        return {"channel": channel, "ts": msg["ts"], "message": self._public(msg)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        msg = self._message(channel, args.get("ts"))
        if msg["user"] != self.bot_user_id:
            raise SlackError("cant_update_message")
        # Slack keeps the previous blocks when an update leaves them out.
        for key in ("text", "blocks", "metadata"):
            if key in args:
                msg[key] = args[key]
        return {
            "channel": channel,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": self._public(msg),
        }

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not args.get("user"):
            raise SlackError("user_not_found")
        if not args.get("text") and not args.get("blocks"):
            raise SlackError("no_text")
        ts = self._new_ts()
        eph = {"message_ts": ts, "user": args["user"], "text": args.get("text", "")}
        eph["blocks"] = args.get("blocks") or []
        if args.get("thread_ts"):
            eph["thread_ts"] = args["thread_ts"]
        self._ephemerals[channel].append(eph)
        return {"message_ts": ts}

    def _react(self, args: dict[str, Any], *, add: bool) -> dict[str, Any]:
        msg = self._message(args.get("channel"), args.get("timestamp"))
        if not args.get("name"):
            raise SlackError("invalid_name")
        self._toggle_reaction(msg, args["name"], self.bot_user_id, add=add)
        return {}

    def _reactions_get(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        msg = self._message(channel, args.get("timestamp"))
        return {"type": "message", "channel": channel, "message": self._public(msg)}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(args.get("user", ""))
        if user is None:
            raise SlackError("user_not_found")
        profile = {"display_name": user["name"], "real_name": user["name"]}
        return {
            "user": {
                **user,
                "team_id": self.team_id,
                "real_name": user["name"],
                "deleted": False,
                "is_app_user": False,
                "profile": profile,
            }
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.usergroups_supported:
            raise SlackError("paid_teams_only")
        members = self._usergroups.get(args.get("usergroup", ""))
        if members is None:
            raise SlackError("no_such_subteam")
        return {"users": list(members)}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        info = self._channels[self._channel(args.get("channel"))]
        private = info["private"]
        return {
            "channel": {
                "id": info["id"],
                "name": info["name"],
                "is_channel": not private,
                "is_group": private,
                "is_private": private,
                "is_archived": False,
                "is_member": True,
            }
        }

    def _new_view(self, view: Any) -> dict[str, Any]:
        if not isinstance(view, dict) or "type" not in view:
            raise SlackError("invalid_arguments")
        view_id, self._next_view = f"V{self._next_view:08d}", self._next_view + 1
        return {**view, "id": view_id, "team_id": self.team_id, "app_id": "A0TEST"}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            raise SlackError("invalid_trigger_id")
        view = self._new_view(args.get("view"))
        self._views[view["id"]] = view
        self._opened.append(view["id"])
        return {"view": view}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        if view_id not in self._views:
            raise SlackError("not_found")
        view = self._new_view(args.get("view"))
        view["id"] = view_id
        self._views[view_id] = view
        return {"view": view}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("user_id") not in self._users:
            raise SlackError("user_not_found")
        view = self._new_view(args.get("view"))
        self._home_views[args["user_id"]] = view
        return {"view": view}

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            raise SlackError("no_socket_mode_double_attached")
        return {"url": self.socket_url}


def _describe(call: Call) -> str:
    keys = ("channel", "ts", "timestamp", "thread_ts", "name", "user", "text")
    shown = {k: str(call.args[k])[:60] for k in keys if k in call.args}
    return f"{call.method} {shown} -> {call.outcome}"


def _decode_json_args(args: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_ARGS & args.keys():
        value = args[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            args[key] = json.loads(value)
    return args


class _RequestHandler(BaseHTTPRequestHandler):
    """Translate HTTP requests into SlackDouble.handle calls."""

    server: ThreadingHTTPServer

    def do_POST(self) -> None:
        """Answer a Web API call or record a response_url post."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        path, _, query = self.path.lstrip("/").partition("?")
        args = dict(parse_qsl(query))
        content_type = self.headers.get("Content-Type", "")
        if raw and "application/json" in content_type:
            args.update(json.loads(raw))
        elif raw:
            args.update(parse_qsl(raw, keep_blank_values=True))
        token = args.pop("token", None)
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        method, response_id = path.removeprefix("api/"), ""
        if method.startswith("response/"):
            method, response_id = "response_url", method.removeprefix("response/")
        double: SlackDouble = self.server.double  # type: ignore[attr-defined]
        args = _decode_json_args(args)
        status, body, headers = double.handle(method, args, token, response_id=response_id)
        self._send(status, body, headers)

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet (the double keeps its own call log)."""
