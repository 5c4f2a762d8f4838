"""The Web API double behaves like Slack for the real slack_sdk and bolt; signing works."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from functools import partial
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.support.signing import (
    event_body,
    reaction_event,
    sign,
    signed_request,
    slash_command_body,
)
from tests.support.slack_double import SlackDouble, clear_slack_env

CHANNEL = "C0CHAN"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*R1* plan"}}]


@pytest.fixture(autouse=True)
def _no_proxy_or_slack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_slack_env(monkeypatch)


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        double.add_channel(CHANNEL, "dma-upgrades")
        double.add_user("UALICE", "alice")
        yield double


@pytest.fixture
def client(slack: SlackDouble) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def slack_error(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value


def error_name(call: Callable[[], Any]) -> str:
    return str(slack_error(call).response["error"])


# -- messages ----------------------------------------------------------------------------------


def test_post_message_and_thread_reply_land_where_slack_would_put_them(
    slack: SlackDouble, client: WebClient
) -> None:
    plan = client.chat_postMessage(channel=CHANNEL, text="R1 plan", blocks=BLOCKS)
    reply = client.chat_postMessage(channel=CHANNEL, text="cluster a ok", thread_ts=plan["ts"])
    nested = client.chat_postMessage(channel=CHANNEL, text="cluster b ok", thread_ts=reply["ts"])

    assert plan["channel"] == CHANNEL
    assert plan["message"]["blocks"] == BLOCKS
    assert plan["ts"] < reply["ts"] < nested["ts"]
    assert [m["ts"] for m in slack.messages(CHANNEL)] == [plan["ts"]]
    assert slack.messages(CHANNEL)[0]["user"] == "UBOT"
    # A reply to a reply joins the root's thread, as in Slack.
    assert [m["text"] for m in slack.thread(CHANNEL, plan["ts"])] == [
        "cluster a ok",
        "cluster b ok",
    ]


def test_update_changes_the_message_in_place_and_keeps_blocks_it_leaves_out(
    slack: SlackDouble, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="R1 planned", blocks=BLOCKS)["ts"]
    client.chat_update(channel=CHANNEL, ts=ts, text="R1 running")

    assert slack.message(CHANNEL, ts)["text"] == "R1 running"
    assert slack.message(CHANNEL, ts)["blocks"] == BLOCKS
    assert len(slack.messages(CHANNEL)) == 1


def test_form_bodies_are_parsed_and_json_valued_fields_decoded(
    slack: SlackDouble, client: WebClient
) -> None:
    # api_call with params sends a form body, as the SDK does for most methods.
    client.api_call(
        "chat.postMessage",
        params={"channel": CHANNEL, "text": "hi", "blocks": json.dumps(BLOCKS)},
    )

    assert slack.messages(CHANNEL)[0]["blocks"] == BLOCKS
    assert slack.calls_to("chat.postMessage")[0].token == "xoxb-test"


def test_ephemeral_messages_are_kept_apart_from_the_channel(
    slack: SlackDouble, client: WebClient
) -> None:
    client.chat_postEphemeral(channel=CHANNEL, user="UALICE", text="unknown cluster 'lab2'")

    assert slack.messages(CHANNEL) == []
    assert [(e["user"], e["text"]) for e in slack.ephemerals(CHANNEL)] == [
        ("UALICE", "unknown cluster 'lab2'")
    ]


def test_unknown_channel_message_and_method_get_slack_error_names(client: WebClient) -> None:
    post_elsewhere = partial(client.chat_postMessage, channel="CNOPE", text="x")
    update_missing = partial(client.chat_update, channel=CHANNEL, ts="1.000001", text="x")

    assert error_name(post_elsewhere) == "channel_not_found"
    assert error_name(update_missing) == "message_not_found"
    assert error_name(partial(client.api_call, "chat.nope")) == "unknown_method"


def test_tokens_are_checked_like_slack_does(slack: SlackDouble) -> None:
    anonymous = WebClient(base_url=slack.base_url)
    app_level = WebClient(token="xapp-test", base_url=slack.base_url)

    assert error_name(anonymous.auth_test) == "not_authed"
    assert error_name(partial(app_level.chat_postMessage, channel=CHANNEL, text="x")) == (
        "not_allowed_token_type"
    )


# -- reactions, people, channels ----------------------------------------------------------------


def test_reactions_get_reflects_the_bot_and_humans(slack: SlackDouble, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="R1 plan")["ts"]
    # Slack leaves "reactions" out while there are none.
    assert "reactions" not in client.reactions_get(channel=CHANNEL, timestamp=ts)["message"]

    client.reactions_add(channel=CHANNEL, timestamp=ts, name="eyes")
    slack.add_reaction(CHANNEL, ts, "white_check_mark", "UALICE")
    slack.add_reaction(CHANNEL, ts, "eyes", "UALICE")
    got = client.reactions_get(channel=CHANNEL, timestamp=ts, full=True)

    assert got["type"] == "message"
    assert got["message"]["reactions"] == [
        {"name": "eyes", "users": ["UBOT", "UALICE"], "count": 2},
        {"name": "white_check_mark", "users": ["UALICE"], "count": 1},
    ]
    err = slack_error(lambda: client.reactions_add(channel=CHANNEL, timestamp=ts, name="eyes"))
    assert err.response["error"] == "already_reacted"

    client.reactions_remove(channel=CHANNEL, timestamp=ts, name="eyes")
    slack.remove_reaction(CHANNEL, ts, "white_check_mark", "UALICE")
    assert slack.message(CHANNEL, ts)["reactions"] == [
        {"name": "eyes", "users": ["UALICE"], "count": 1}
    ]


def test_users_groups_and_channels_are_looked_up(client: WebClient, slack: SlackDouble) -> None:
    slack.add_user("UDEPLOY", "deploybot", is_bot=True)
    slack.add_usergroup("S0ONCALL", ["UALICE", "UBOB"])
    slack.add_channel("G0PRIV", "dma-private", is_private=True)

    assert client.users_info(user="UALICE")["user"]["is_bot"] is False
    assert client.users_info(user="UDEPLOY")["user"]["is_bot"] is True
    assert error_name(partial(client.users_info, user="UNOPE")) == "user_not_found"
    assert client.usergroups_users_list(usergroup="S0ONCALL")["users"] == ["UALICE", "UBOB"]
    assert client.conversations_info(channel=CHANNEL)["channel"]["name"] == "dma-upgrades"
    assert client.conversations_info(channel="G0PRIV")["channel"]["is_private"] is True


def test_free_workspaces_refuse_user_groups() -> None:
    with SlackDouble(usergroups_supported=False) as slack:
        slack.add_usergroup("S0ONCALL", ["UALICE"])
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        err = slack_error(lambda: client.usergroups_users_list(usergroup="S0ONCALL"))
    assert err.response["error"] == "paid_teams_only"


def test_views_open_and_publish(slack: SlackDouble, client: WebClient) -> None:
    view = {"type": "home", "blocks": BLOCKS}
    client.views_publish(user_id="UALICE", view=view)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "R1"}, "blocks": []}

    assert slack.home_view("UALICE") is not None
    assert slack.home_view("UALICE")["blocks"] == BLOCKS  # type: ignore[index]
    assert client.views_open(trigger_id="123.456", view=modal)["view"]["type"] == "modal"


def test_response_url_posts_are_recorded(slack: SlackDouble) -> None:
    WebhookClient(slack.response_url("cmd-1")).send(text="R1 planned", response_type="ephemeral")

    assert slack.responses_posted("cmd-1") == [{"text": "R1 planned", "response_type": "ephemeral"}]
    assert slack.responses_posted("cmd-2") == []


# -- faults --------------------------------------------------------------------------------------


def test_rate_limit_raises_with_retry_after_then_clears(
    slack: SlackDouble, client: WebClient
) -> None:
    slack.fail("chat.postMessage", retry_after=7)

    err = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "7"
    client.chat_postMessage(channel=CHANNEL, text="x")
    assert [c.outcome for c in slack.calls_to("chat.postMessage")] == ["429 ratelimited", "ok"]


def test_rate_limit_retry_handler_waits_and_succeeds(slack: SlackDouble) -> None:
    client = WebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail("chat.postMessage", retry_after=0)

    client.chat_postMessage(channel=CHANNEL, text="R1 started")

    attempts = slack.calls_to("chat.postMessage")
    assert [c.outcome for c in attempts] == ["429 ratelimited", "ok"]
    assert len(slack.messages(CHANNEL)) == 1


def test_server_errors_and_error_names_are_injected(slack: SlackDouble, client: WebClient) -> None:
    slack.fail("reactions.get", status=500)
    slack.fail("users.info", error="team_access_not_granted", times=2)

    assert error_name(partial(client.users_info, user="UALICE")) == "team_access_not_granted"
    assert slack_error(partial(client.users_info, user="UALICE")).response.status_code == 200
    assert client.users_info(user="UALICE")["ok"] is True

    retrying = WebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[
            ServerErrorRetryHandler(
                max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0)
            )
        ],
    )
    ts = client.chat_postMessage(channel=CHANNEL, text="x")["ts"]
    assert retrying.reactions_get(channel=CHANNEL, timestamp=ts)["ok"] is True
    assert [c.outcome for c in slack.calls_to("reactions.get")] == ["500 internal_error", "ok"]


def test_outage_answers_503_until_it_ends(slack: SlackDouble, client: WebClient) -> None:
    slack.outage(True)
    assert slack_error(client.auth_test).response.status_code == 503
    assert error_name(partial(client.chat_postMessage, channel=CHANNEL, text="x")) == (
        "service_unavailable"
    )

    slack.outage(False)
    assert client.chat_postMessage(channel=CHANNEL, text="x")["ok"] is True


def test_wait_for_says_what_it_waited_for_and_what_it_saw(
    slack: SlackDouble, client: WebClient
) -> None:
    client.chat_postMessage(channel=CHANNEL, text="R1 plan")

    with pytest.raises(AssertionError, match=r"the escalation(.|\n)*chat\.postMessage"):
        slack.wait_for(lambda: len(slack.messages(CHANNEL)) > 1, 0.05, what="the escalation")
    slack.wait_for(lambda: len(slack.messages(CHANNEL)) == 1, 1.0)


# -- bolt against the double ---------------------------------------------------------------------


class InlineExecutor(Executor):
    """Run bolt listeners in the dispatching thread, so dispatch() returns after them."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


SECRET = "test-signing-secret"


def test_bolt_app_runs_against_the_double(slack: SlackDouble, client: WebClient) -> None:
    app = App(client=client, signing_secret=SECRET, listener_executor=InlineExecutor())
    reactions: list[str] = []

    @app.command("/upgrade")
    def upgrade(ack: Callable[..., None], respond: Callable[..., None], command: dict) -> None:
        ack()
        respond(text=f"got {command['text']}")

    @app.event("reaction_added")
    def reacted(event: dict) -> None:
        reactions.append(event["user"])

    now = int(time.time())
    body = slash_command_body("status R1", response_url=slack.response_url("c1"))
    assert app.dispatch(signed_request(SECRET, body, now)).status == 200
    for n, user in enumerate(["UBOT", "UALICE"]):
        event = reaction_event(
            "reaction_added",
            user=user,
            reaction="eyes",
            channel=CHANNEL,
            ts="1.1",
            item_user="UBOT",
        )
        raw = event_body(event, event_id=f"Ev{n}", event_time=now)
        app.dispatch(signed_request(SECRET, raw, now))

    assert len(slack.calls_to("auth.test")) == 1
    assert slack.responses_posted("c1") == [{"text": "got status R1"}]
    # bolt drops the bot's own events using the user_id auth.test returned.
    assert reactions == ["UALICE"]


# -- signing ------------------------------------------------------------------------------------


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


SLACK_EXAMPLE_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmib"
    "IGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


def test_slacks_published_example_verifies() -> None:
    verifier = SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5", clock=FixedClock(1531420618))
    headers = sign("8f742231b10e8888abcd99yyyzzz85a5", SLACK_EXAMPLE_BODY, 1531420618)

    assert headers["X-Slack-Signature"] == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )
    assert verifier.is_valid_request(SLACK_EXAMPLE_BODY, headers)


def test_signed_requests_verify_and_tampering_or_staleness_does_not() -> None:
    body = slash_command_body("plan lab 10.2.1")
    headers = sign(SECRET, body, 1_700_000_000)
    verifier = SignatureVerifier(SECRET, clock=FixedClock(1_700_000_000 + 60))

    assert verifier.is_valid_request(body, headers)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert not verifier.is_valid_request(body.replace("10.2.1", "10.3.0"), headers)
    assert not SignatureVerifier(SECRET, clock=FixedClock(1_700_000_000 + 301)).is_valid_request(
        body, headers
    )
    assert not SignatureVerifier("other-secret", clock=FixedClock(1_700_000_000)).is_valid_request(
        body, headers
    )
