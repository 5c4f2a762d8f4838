"""The Slack double's file uploads: files.getUploadURLExternal, the bytes' POST, the completion.

Slack's current way (files.upload is retired): ask for an upload URL and a file id, POST the raw
bytes to that URL (answered in plain text), then complete the upload, which shares the file in
a channel or thread with an optional comment.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import TYPE_CHECKING, Any

from tests.support.slack_web_api import SlackError

if TYPE_CHECKING:
    from tests.support.slack_double import Call


class FileUploads:
    """The file half of SlackDouble (it provides the lock, call log and messages used here)."""

    _lock: threading.RLock
    _called: threading.Condition
    _calls: list[Call]
    _outage: bool
    _files: dict[str, dict[str, Any]]
    bot_user_id: str

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def _channel(self, channel: Any) -> str:
        raise NotImplementedError

    def _take_fault(self, method: str) -> Any:
        raise NotImplementedError

    def _new_message(self, channel: str, text: str, blocks: list[Any], *, user: str,
                     thread_ts: Any = None) -> dict[str, Any]:
        raise NotImplementedError

    def files(self) -> list[dict[str, Any]]:
        """Every file shared so far (completed uploads), in order, with its bytes."""
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values() if f.get("shared")]

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        length = str(args.get("length", ""))
        if not args.get("filename") or not length.isdigit() or int(length) < 1:
            raise SlackError("invalid_arguments")
        file_id = f"F{len(self._files) + 1:08d}"
        self._files[file_id] = {"id": file_id, "name": args["filename"], "length": int(length),
                                "data": None, "shared": False}
        return {"upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """The upload POST of a file's bytes: (HTTP status, plain-text answer), as Slack's."""
        with self._lock:
            entry = self._files.get(file_id)
            fault = self._take_fault("upload")  # slack.fail("upload", status=500) refuses bytes
            ok = (entry is not None and not self._outage and fault is None
                  and len(data) == entry["length"])
            if ok and entry is not None:
                entry["data"] = data
            from tests.support.slack_double import Call  # the double imports this module

            self._calls.append(Call("upload", {"file_id": file_id, "bytes": len(data)}, None,
                                    time.monotonic(), "ok" if ok else "400"))
            self._called.notify_all()
            return (200, f"OK - {len(data)}") if ok else (400, "upload refused")

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        listed = args.get("files")
        if not isinstance(listed, list) or not listed:
            raise SlackError("invalid_arguments")
        channel = self._channel(args.get("channel_id")) if args.get("channel_id") else None
        entries = []
        for item in listed:
            entry = self._files.get(str(item.get("id")))
            if entry is None or entry["data"] is None:
                raise SlackError("file_not_found")
            entries.append(entry)
        shared: list[dict[str, Any]] = []
        for entry, item in zip(entries, listed, strict=True):
            entry.update(title=item.get("title") or entry["name"], shared=True,
                         channel=channel, thread_ts=args.get("thread_ts"))
            shared.append({"id": entry["id"], "name": entry["name"], "title": entry["title"]})
        if channel is not None:
            msg = self._new_message(channel, args.get("initial_comment", ""), [],
                                    user=self.bot_user_id, thread_ts=args.get("thread_ts"))
            msg["files"] = shared
        return {"files": shared}
