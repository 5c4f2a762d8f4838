"""Prometheus metrics: what a whole upgrade, an escalation and the database show at /metrics,
read back with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.flows.health import Health
from tests.support.engine_harness import harness

pytestmark = pytest.mark.slow  # whole upgrades in virtual time


def samples(m: metrics.Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels, parsed as Prometheus would."""
    parsed = text_string_to_metric_families(m.exposition().decode())
    return {(s.name, frozenset(s.labels.items())): s.value for f in parsed for s in f.samples}


def total(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and want <= ls)


@pytest.fixture
def fresh() -> Iterator[metrics.Metrics]:
    """This process's metrics, from zero, for one test."""
    mine = metrics.Metrics()
    previous = metrics.install(mine)
    try:
        yield mine
    finally:
        metrics.install(previous)


def test_a_whole_upgrade_shows_in_the_metrics(sqlite_url: str,
                                              fresh: metrics.Metrics) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(target="lab")
        assert h.drive(name) == "completed"
        metrics.watch_state(Health(h.sessions, h.clock, "test").stored_state)
        try:
            found = samples(fresh)
        finally:
            metrics.watch_state(None)

    # Runs by status, finished ones included, and every status present (zeros too).
    assert total(found, "upgradebot_runs", status="completed") == 1
    assert total(found, "upgradebot_runs", status="running") == 0
    assert total(found, "upgradebot_database_up") == 1
    # Steps: every step of the basic procedure started and finished, none failed; installs
    # have a duration (virtual time: the simulated install's 35 minutes at least).
    assert total(found, "upgradebot_steps_started_total", kind="install") == 1
    assert total(found, "upgradebot_steps_finished_total", kind="verify") == 1
    assert total(found, "upgradebot_steps_failed_total") == 0
    assert total(found, "upgradebot_step_duration_seconds_count", kind="install") == 1
    assert total(found, "upgradebot_step_duration_seconds_sum", kind="wait_login") >= 60
    # DMA requests by cluster, method and outcome, with their latency.
    gets = total(found, "upgradebot_dma_requests_total", cluster="lab", method="GET",
                 outcome="ok")
    assert gets > 10
    assert total(found, "upgradebot_dma_requests_total", cluster="lab", method="POST") >= 1
    assert total(found, "upgradebot_dma_request_duration_seconds_count", cluster="lab") >= gets
    # The restart's 401 phase is counted as what it is.
    assert total(found, "upgradebot_dma_requests_total", cluster="lab",
                 outcome="unauthorized") >= 1
    # Claims were timed; the outbox is empty once delivered.
    assert total(found, "upgradebot_worker_claim_seconds_count") > 5
    assert total(found, "upgradebot_outbox_backlog") == 0
    assert total(found, "upgradebot_escalations_total") == 0


def test_an_escalation_is_counted_by_condition(sqlite_url: str,
                                               fresh: metrics.Metrics) -> None:
    with harness(sqlite_url, faults=["lab=never-returns"]) as h:
        name = h.plan(target="lab")
        assert h.drive(name) == "escalated"
    found = samples(fresh)
    assert total(found, "upgradebot_escalations_total", condition="cannot-log-in") == 1
    assert total(found, "upgradebot_steps_failed_total", kind="wait_login") == 1


def test_a_database_that_cannot_be_read_shows_as_down_and_the_scrape_still_answers(
        fresh: metrics.Metrics) -> None:
    def broken() -> metrics.StoredState:
        raise OSError("no database")

    slack_up = [True]
    metrics.watch_state(broken, lambda: slack_up[0])
    try:
        found = samples(fresh)
        slack_up[0] = False
        assert total(samples(fresh), "upgradebot_slack_up") == 0  # read at each scrape
    finally:
        metrics.watch_state(None)
    assert total(found, "upgradebot_database_up") == 0
    assert total(found, "upgradebot_slack_up") == 1
    assert not any(n == "upgradebot_runs" for n, _ in found)


def test_each_metrics_object_has_its_own_registry() -> None:
    # Two processes (here two registries) never see each other's counts.
    one, two = metrics.Metrics(), metrics.Metrics()
    previous = metrics.install(one)
    try:
        metrics.slack_call("chat.postMessage", "ratelimited")
    finally:
        metrics.install(previous)
    assert total(samples(one), "upgradebot_slack_api_calls_total", outcome="ratelimited") == 1
    assert total(samples(two), "upgradebot_slack_api_calls_total") == 0
