"""Logging of one process: plain text or one JSON object per line, with run, step, cluster, actor.

`configure` sets the root handler once at the entry point. In JSON mode every line the process
writes is one object: log records, Python warnings (captured), uncaught exceptions of any thread
and the start-up banners (`banner`). Where a record is about a run, a step, a cluster or a
person, `context(...)` (or `extra=`) adds those fields. Known secrets (tokens, passwords) and
anything shaped like a Slack token are masked in every line, whatever logged it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
FIELDS = ("run", "step", "cluster", "actor")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
# Slack tokens: bot, user, app-level, config and refresh tokens (xoxb-, xoxp-, xapp-, xoxe-…).
_TOKEN_RE = re.compile(r"\bx(?:ox[abpesr]|app)-[A-Za-z0-9-]{6,}")
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "upgradebot_log_context", default={})  # noqa: B039 - never mutated, only replaced
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
log = logging.getLogger("upgradebot")
_state: dict[str, LogFormat] = {"format": "text"}  # what `configure` chose
_handler: dict[str, logging.Handler] = {}  # the root handler `configure` added


@contextlib.contextmanager
def context(**fields: object) -> Iterator[None]:
    """Add run/step/cluster/actor fields to every record logged inside the block."""
    added = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    token = _context.set({**_context.get(), **added})
    try:
        yield
    finally:
        _context.reset(token)


def redact(*secrets: str | None) -> None:
    """Mask these values wherever they would appear in a log line (short ones are ignored)."""
    with _secrets_lock:
        _secrets.update(s for s in secrets if s and len(s) >= 6)


def scrub(text: str) -> str:
    """The text with known secrets and Slack-token-shaped words masked."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _TOKEN_RE.sub(MASK, text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name,
            "message": scrub(record.getMessage())}
        for name, value in {**_context.get(), **_extras(record)}.items():
            line[name] = scrub(str(value))
        if record.exc_info:
            line["exception"] = scrub("".join(traceback.format_exception(*record.exc_info)))
        elif record.exc_text:
            line["exception"] = scrub(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The classic line, secrets masked, known fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as text."""
        fields = {**_context.get(), **_extras(record)}
        text = super().format(record)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        return scrub(text)


def _extras(record: logging.LogRecord) -> dict[str, str]:
    return {name: str(getattr(record, name)) for name in FIELDS
            if getattr(record, name, None) not in (None, "")}


def configure(fmt: LogFormat = "text", *, level: int = logging.WARNING,
              stream: TextIO | None = None) -> logging.Handler:
    """Send every log record, warning and uncaught exception to one handler in `fmt`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    previous = _handler.pop("root", None)
    if previous is not None:  # configured before (tests call main() again): replace only ours
        root.removeHandler(previous)
    _handler["root"] = handler
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn(...) becomes a record of "py.warnings"
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    _state["format"] = fmt
    return handler


def current_format() -> LogFormat:
    """The format `configure` chose (text before it is called)."""
    return _state["format"]


def banner(line: str, *, stream: TextIO | None = None) -> None:
    """A start-up or stop line for people: printed as is, or a JSON record in JSON mode."""
    if _state["format"] == "json":
        log.info("%s", line)
    else:
        print(line, file=stream or sys.stdout, flush=True)


def json_line(level: str, message: str, logger: str = "upgradebot") -> str:
    """A JSON log line built without the logging machinery (where its locks may be held)."""
    return json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                       "level": level, "logger": logger, "message": scrub(message)})


def _log_uncaught(kind: type[BaseException], error: BaseException,
                  tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    log.critical("uncaught %s", kind.__name__, exc_info=(kind, error, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("upgradebot.threads").error(
        "uncaught %s in thread %s", args.exc_type.__name__,
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback))


def parse_format(value: str | None, *, default: LogFormat = "text") -> LogFormat:
    """Read a log format name; a clear error for anything else."""
    if value is None or not value.strip():
        return default
    name = value.strip().lower()
    for fmt in FORMATS:
        if name == fmt:
            return fmt
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {value.strip()!r}")
