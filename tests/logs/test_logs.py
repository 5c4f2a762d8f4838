"""Structured logs: in JSON mode every line is one object with time, level, logger, message and
the run, step, cluster and actor where known; warnings and uncaught exceptions included; no
secret ever shows, whatever logged it."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from bot import logs
from tests.support.engine_harness import harness


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Configure JSON logging into a buffer at INFO; put everything back afterwards."""
    root = logging.getLogger()
    saved = (root.level, sys.excepthook, threading.excepthook, logs.current_format())
    stream = io.StringIO()
    handler = logs.configure("json", level=logging.INFO, stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        logs._handler.pop("root", None)
        root.setLevel(saved[0])
        sys.excepthook, threading.excepthook = saved[1], saved[2]
        logs._state["format"] = saved[3]
        logging.captureWarnings(False)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as JSON (a line that is not fails the test)."""
    out = []
    for line in stream.getvalue().splitlines():
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= set(record), line
        out.append(record)
    return out


def test_every_kind_of_line_is_one_json_object(json_log: io.StringIO) -> None:
    logs.redact("xoxb-real-bot-token-123", "dma-admin-password")
    log = logging.getLogger("upgradebot.test")
    with logs.context(run="R7", step="install:dallas", cluster="dallas"):
        log.info("visit\nover two lines")  # a newline stays inside the one JSON line
    log.info("by someone", extra={"actor": "U0OPERATOR"})
    log.warning("token xoxb-real-bot-token-123 and password dma-admin-password, "
                "and an unknown xapp-1-A0-123456-abcdef")
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # the suite turns warnings into errors
        warnings.warn("a library's deprecation", UserWarning, stacklevel=1)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("a bug")
    thread = threading.Thread(target=lambda: 1 / 0, name="t-crash")
    thread.start()
    thread.join()
    logs.banner("upgradebot listening on http://127.0.0.1:3000 (health: /healthz)")

    records = lines(json_log)
    visit, actor, secret, warned, bug, crash, banner = records
    assert (visit["run"], visit["step"], visit["cluster"]) == ("R7", "install:dallas", "dallas")
    assert visit["message"] == "visit\nover two lines"
    assert actor["actor"] == "U0OPERATOR" and "run" not in actor
    assert "xoxb-real" not in secret["message"] and "dma-admin-password" not in secret["message"]
    assert "xapp-1" not in secret["message"] and secret["message"].count("***") == 3
    assert warned["logger"] == "py.warnings" and "deprecation" in warned["message"]
    assert bug["level"] == "ERROR" and "ValueError: boom" in bug["exception"]
    assert crash["level"] == "ERROR" and "t-crash" in crash["message"]
    assert "ZeroDivisionError" in crash["exception"]
    assert banner["message"].startswith("upgradebot listening on") and banner["level"] == "INFO"


def test_a_log_format_name_is_checked() -> None:
    assert logs.parse_format(None) == "text" and logs.parse_format(" JSON ") == "json"
    with pytest.raises(ValueError, match="one of text, json, not 'xml'"):
        logs.parse_format("xml")


def test_text_lines_carry_the_fields_and_mask_secrets() -> None:
    record = logging.LogRecord("upgradebot.x", logging.INFO, __file__, 1,
                               "sent xoxb-abcdef-123456", None, None)
    record.run = "R2"
    assert logs.TextFormatter().format(record).endswith("sent *** [run=R2]")


@pytest.mark.slow
def test_approvals_and_state_changes_are_logged_with_who_and_what(
        sqlite_url: str, json_log: io.StringIO) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(target="lab")
        assert h.drive(name) == "completed"
    audit = [r for r in lines(json_log) if r["logger"] == "upgradebot.audit"]
    said = [r["message"] for r in audit]
    # Each approver's approval, the quorum's transition, each step, the end: who and what.
    assert sum("approval.given by U0APPROVER" in m for m in said) == 2
    approve = next(r for r in audit if " run.approve " in r["message"])
    assert approve["actor"] == "U0APPROVER2" and approve["run"] == name
    assert "(awaiting_approval → " in approve["message"]
    install = next(r for r in audit if "step.start install:lab" in r["message"])
    assert install["cluster"] == "lab" and install["step"] == "install:lab"
    assert install["actor"].startswith("worker:")
    assert any(" run.complete " in m and "→ completed" in m for m in said)
