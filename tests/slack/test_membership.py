"""Operators and approvers from user ids and user groups, cached; bots are told apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk import WebClient

from bot.slack.membership import Membership
from tests.support.slack_double import SlackDouble


@pytest.fixture
def slack() -> Iterator[SlackDouble]:
    with SlackDouble() as double:
        double.add_user("UALICE", "alice")
        double.add_user("UBOB", "bob")
        double.add_user("UHELPER", "helper", is_bot=True)
        double.add_usergroup("S0APPROVERS", ["UALICE", "UHELPER"])
        yield double


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_groups_are_expanded_and_cached_until_the_ttl(slack: SlackDouble) -> None:
    ticker = Ticker()
    membership = Membership(WebClient(token="xoxb-test", base_url=slack.base_url), ttl_s=60,
                            monotonic=ticker)

    assert membership.expand(["S0APPROVERS", "UBOB"]) == {"UALICE", "UHELPER", "UBOB"}
    slack.add_usergroup("S0APPROVERS", ["UBOB"])  # the group changes in Slack
    assert membership.includes(["S0APPROVERS"], "UALICE")  # still cached
    ticker.now = 61
    assert not membership.includes(["S0APPROVERS"], "UALICE")
    assert membership.includes(["S0APPROVERS"], "UBOB")
    assert len(slack.calls_to("usergroups.users.list")) == 2


def test_a_failed_refresh_keeps_the_last_known_members(slack: SlackDouble) -> None:
    ticker = Ticker()
    membership = Membership(WebClient(token="xoxb-test", base_url=slack.base_url), ttl_s=60,
                            monotonic=ticker)
    assert membership.includes(["S0APPROVERS"], "UALICE")

    ticker.now = 61
    slack.outage(True)
    assert membership.includes(["S0APPROVERS"], "UALICE")
    slack.outage(False)


def test_bots_are_told_from_people_and_unknown_accounts_do_not_count(slack: SlackDouble) -> None:
    membership = Membership(WebClient(token="xoxb-test", base_url=slack.base_url))

    assert membership.is_bot("UHELPER") and not membership.is_bot("UALICE")
    assert membership.is_bot("UNOBODY")
    membership.is_bot("UALICE")
    assert len(slack.calls_to("users.info")) == 3  # each person looked up once
