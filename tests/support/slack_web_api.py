"""The Slack double's workspace lookups, its Web API methods and its HTTP wire format.

A mixin of `tests.support.slack_double.SlackDouble` (which holds the workspace's state and
the bookkeeping of calls, faults and holds): each `_method` answers one Web API method from
the in-memory workspace, with Slack's own error names.
"""

from __future__ import annotations

import contextlib
import copy
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# Arguments whose values are JSON documents; in form bodies they arrive as JSON strings.
_JSON_ARGS = frozenset({"blocks", "attachments", "view", "metadata", "files"})


class SlackError(Exception):
    """A Slack error name, answered as {"ok": false, "error": name}."""


class WebApiMethods:
    """Workspace lookups and Web API methods over the double's in-memory workspace."""

    bot_user_id: str
    bot_id: str
    team_id: str
    usergroups_supported: bool
    socket_url: str | None
    _users: dict[str, dict[str, Any]]
    _usergroups: dict[str, list[str]]
    _channels: dict[str, dict[str, Any]]
    _messages: dict[str, dict[str, dict[str, Any]]]
    _ephemerals: dict[str, list[dict[str, Any]]]
    _home_views: dict[str, dict[str, Any]]
    _views: dict[str, dict[str, Any]]
    _opened: list[str]
    _next_ts: int
    _next_view: int

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

    @staticmethod
    def _shown(msg: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        # Slack returns a message's metadata only when include_all_metadata is set.
        out = WebApiMethods._public(msg)
        if str(args.get("include_all_metadata", "")).lower() not in ("1", "true"):
            out.pop("metadata", None)
        return out

    @staticmethod
    def _page(items: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        start = int(args.get("cursor") or 0)
        limit = max(1, min(int(args.get("limit") or 100), 1000))
        more = start + limit < len(items)
        return {"messages": items[start:start + limit], "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        top = [m for m in self._messages[channel].values()
               if m.get("thread_ts", m["ts"]) == m["ts"]]
        newest_first = [self._shown(m, args) for m in reversed(top)]
        return self._page(newest_first, args)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        root = self._message(channel, args.get("ts"))
        thread = [root] + [m for m in self._messages[channel].values()
                           if m.get("thread_ts") == root["ts"] and m["ts"] != root["ts"]]
        return self._page([self._shown(m, args) for m in thread], args)

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
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.lstrip("/").startswith("upload/"):  # a file's bytes (see slack_files.py)
            self._upload(self.path.lstrip("/").removeprefix("upload/"), data)
            return
        raw = data.decode("utf-8")
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
        double: Any = self.server.double  # type: ignore[attr-defined]  # a SlackDouble
        args = _decode_json_args(args)
        status, body, headers = double.handle(method, args, token, response_id=response_id)
        double.wait_if_held(method)
        with contextlib.suppress(OSError):  # the caller is gone (killed while the answer was held)
            self._send(status, body, headers)

    def _upload(self, file_id: str, data: bytes) -> None:
        status, text = self.server.double.receive_upload(file_id, data)  # type: ignore[attr-defined]
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
