"""The outbox's Slack sink: one call per message; trouble becomes RetryLater, at once."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.app.slack import web_client
from bot.flows.base import NoSuchRun
from bot.outbox import Outgoing, RetryLater
from bot.slack.sink import FileRenderer, SlackSink
from tests.support.environment import make_environment
from tests.support.slack_double import SlackDouble

CHANNEL = "C0UPGRADES"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*R1* plan"}}]


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        double.add_channel(CHANNEL, "dma-upgrades")
        yield double


@pytest.fixture
def sink(slack: SlackDouble) -> SlackSink:
    env = make_environment(slack_bot_token="xoxb-test", slack_api_url=slack.base_url)
    return SlackSink(web_client(env, blocking_retries=False, timeout_s=2))


def out(kind: str = "post", *, thread_ts: str | None = None, thread: bool = False,
        **payload: Any) -> Outgoing:
    return Outgoing(id=1, kind=kind, channel=CHANNEL, run_name="R1", thread_ts=thread_ts,
                    thread=thread, payload=payload or {"text": "R1 plan", "blocks": BLOCKS})


def test_posts_replies_edits_and_ephemerals(slack: SlackDouble, sink: SlackSink) -> None:
    ts = sink.send(out())
    assert ts is not None
    reply = sink.send(out(thread_ts=ts, thread=True, text="✅ dallas verified"))
    edit = sink.send(out("update", thread_ts=ts, text="R1 running", blocks=BLOCKS))
    private = sink.send(out("ephemeral", text="only you", user="UALICE"))

    assert reply is not None and edit is None and private is None
    assert slack.message(CHANNEL, ts)["text"] == "R1 running"
    assert [m["text"] for m in slack.thread(CHANNEL, ts)] == ["✅ dallas verified"]
    assert slack.ephemerals(CHANNEL)[0]["text"] == "only you"
    assert slack.calls_to("chat.postMessage")[0].args["blocks"] == BLOCKS


@pytest.mark.parametrize(("arrange", "seconds", "reason"), [
    (lambda s: s.fail("chat.postMessage", retry_after=30), 30.0, "rate-limited"),
    (lambda s: s.fail("chat.postMessage", status=500), 2.0, "Slack error"),
    (lambda s: s.outage(True), 2.0, "service_unavailable"),
    (lambda s: s.fail("chat.postMessage", error="not_in_channel"), 300.0, "not_in_channel"),
])
def test_trouble_becomes_retry_later_without_waiting(slack: SlackDouble, sink: SlackSink,
                                                     arrange: Any, seconds: float,
                                                     reason: str) -> None:
    arrange(slack)
    started = time.monotonic()
    with pytest.raises(RetryLater) as info:
        sink.send(out())
    assert time.monotonic() - started < 1.0  # the outbox waits, not the sink
    assert info.value.seconds == seconds and reason in info.value.reason


def test_an_unreachable_slack_is_retried_later(slack: SlackDouble) -> None:
    env = make_environment(slack_bot_token="xoxb-test", slack_api_url=slack.base_url)
    slack.stop()
    with pytest.raises(RetryLater, match="unreachable"):
        SlackSink(web_client(env, blocking_retries=False, timeout_s=1)).send(out())


def test_refused_blocks_fall_back_to_the_text(slack: SlackDouble, sink: SlackSink) -> None:
    slack.fail("chat.postMessage", error="invalid_blocks")
    ts = sink.send(out())
    assert ts is not None
    assert slack.message(CHANNEL, ts)["text"] == "R1 plan"
    assert slack.message(CHANNEL, ts)["blocks"] == []


def test_an_edit_of_a_deleted_message_is_dropped(slack: SlackDouble, sink: SlackSink) -> None:
    assert sink.send(out("update", thread_ts="1.000001", text="gone")) is None
    assert sink.send(out("update", thread_ts=None, text="never posted")) is None


def test_the_client_has_no_blocking_retry_handlers(slack: SlackDouble) -> None:
    env = make_environment(slack_bot_token="xoxb-test", slack_api_url=slack.base_url)
    fast = web_client(env, blocking_retries=False)
    patient = web_client(env, blocking_retries=True)
    names = lambda c: {type(h).__name__ for h in c.retry_handlers}  # noqa: E731
    assert "RateLimitErrorRetryHandler" not in names(fast)
    assert {"RateLimitErrorRetryHandler", "ServerErrorRetryHandler"} <= names(patient)
    assert isinstance(fast, WebClient) and fast.base_url == slack.base_url


def test_a_broadcast_reply_is_shown_in_the_channel_too(slack: SlackDouble,
                                                       sink: SlackSink) -> None:
    ts = sink.send(out())
    assert ts is not None
    sink.send(out(thread_ts=ts, thread=True, text="🚨 R1 — escalation", reply_broadcast=True))
    sink.send(out(thread_ts=ts, thread=True, text="✅ dallas verified"))
    [call, plain] = slack.calls_to("chat.postMessage")[1:]
    assert call.args["reply_broadcast"] is True and "reply_broadcast" not in plain.args
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["R1 plan", "🚨 R1 — escalation"]
    assert len(slack.thread(CHANNEL, ts)) == 2


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _upload(**spec: str) -> Outgoing:
    return Outgoing(id=7, kind="upload", channel=CHANNEL, run_name="R1", thread_ts=None,
                    thread=False, payload={"text": "R1 timeline", "file": {
                        "what": "timeline", "run": "R1", "filename": "R1-timeline.png",
                        "title": "R1 timeline", **spec}})


def _files_sink(slack: SlackDouble, render: FileRenderer | None) -> SlackSink:
    env = make_environment(slack_bot_token="xoxb-test", slack_api_url=slack.base_url)
    return SlackSink(web_client(env, blocking_retries=False, timeout_s=2), files=render)


def test_an_upload_renders_the_file_when_delivered_and_shares_it(slack: SlackDouble) -> None:
    asked: list[dict[str, Any]] = []

    def render(spec: Mapping[str, Any]) -> bytes:
        asked.append(dict(spec))
        return PNG

    sink = _files_sink(slack, render)
    assert sink.send(_upload()) is None
    assert asked[0]["what"] == "timeline" and asked[0]["run"] == "R1"
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert slack.calls_to("files.getUploadURLExternal")[0].args["length"] == str(len(PNG))
    [shared] = slack.files()
    assert shared["data"] == PNG and shared["title"] == "R1 timeline"
    assert shared["channel"] == CHANNEL
    [message] = slack.messages(CHANNEL)
    assert message["text"] == "R1 timeline" and message["files"][0]["name"] == "R1-timeline.png"


@pytest.mark.parametrize("method", ["files.getUploadURLExternal",
                                    "files.completeUploadExternal"])
def test_an_upload_refused_for_now_is_tried_again_later(slack: SlackDouble, method: str) -> None:
    slack.fail(method, retry_after=20)
    with pytest.raises(RetryLater) as raised:
        _files_sink(slack, lambda spec: PNG).send(_upload())
    assert raised.value.seconds == 20.0
    assert slack.files() == []


def test_an_upload_whose_bytes_are_refused_is_tried_again(slack: SlackDouble) -> None:
    slack.fail("upload", status=500)
    with pytest.raises(RetryLater) as raised:
        _files_sink(slack, lambda spec: PNG).send(_upload())
    assert "Slack refused the file's bytes (HTTP 400)" in raised.value.reason
    assert [c.outcome for c in slack.calls_to("upload")] == ["400"]
    assert slack.calls_to("files.completeUploadExternal") == []
    # Tried again: a new upload URL, and this time the file is shared.
    _files_sink(slack, lambda spec: PNG).send(_upload())
    assert len(slack.files()) == 1


def test_a_file_that_cannot_be_rendered_any_more_is_dropped(slack: SlackDouble) -> None:
    def gone(spec: Mapping[str, Any]) -> bytes:
        raise NoSuchRun("R1")

    assert _files_sink(slack, gone).send(_upload()) is None
    assert _files_sink(slack, None).send(_upload()) is None
    assert slack.calls == []
