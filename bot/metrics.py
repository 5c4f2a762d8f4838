"""Prometheus metrics of one process (prometheus_client), and the small hooks that count.

Each process has its own registry (never prometheus_client's global one), exposed at its own
`/metrics`: several bot processes on one database each show what they did themselves. Counters
and histograms are fed by hook functions called where things happen (a DMA request, a Slack
call, a step transition after its commit, a claim); gauges of what the database holds (runs by
status, the outbox's backlog) are read when Prometheus scrapes, from a source the composition
root hands over. This module imports nothing of the project: every layer may count.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
PREFIX = "upgradebot"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Steps last from milliseconds (a skipped check) to hours (an install, a drain).
STEP_BUCKETS = (0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class StoredState:
    """What the database holds right now: runs by status, the outbox's backlog."""

    runs_by_status: Mapping[str, int]
    outbox_backlog: int
    outbox_oldest_s: float | None


StateSource = Callable[[], "StoredState | None"]


class _StoredStateCollector(Collector):
    """Reads the database at scrape time; a database that cannot be read shows as down."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        source = self._metrics.state_source
        try:
            state = source() if source is not None else None
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: could not read the database (%s)", type(exc).__name__)
            state = None
        up = GaugeMetricFamily(f"{PREFIX}_database_up",
                               "1 when the last scrape could read the database")
        up.add_metric([], 0.0 if state is None else 1.0)
        yield up
        slack = self._metrics.slack_source
        if slack is not None:
            yield GaugeMetricFamily(f"{PREFIX}_slack_up", "1 while Slack counts as reachable",
                                    value=1.0 if slack() else 0.0)
        if state is None:
            return
        runs = GaugeMetricFamily(f"{PREFIX}_runs", "Runs by status (finished ones included)",
                                 labels=["status"])
        for status, count in sorted(state.runs_by_status.items()):
            runs.add_metric([status], float(count))
        yield runs
        yield GaugeMetricFamily(f"{PREFIX}_outbox_backlog",
                                "Slack messages queued and not yet delivered",
                                value=float(state.outbox_backlog))
        yield GaugeMetricFamily(f"{PREFIX}_outbox_oldest_age_seconds",
                                "Age of the oldest undelivered message (0 when none)",
                                value=float(state.outbox_oldest_s or 0.0))


@dataclass
class Metrics:
    """The registry of one process and every metric it exposes."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    state_source: StateSource | None = None
    slack_source: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        reg, p = self.registry, PREFIX
        self.steps_started = Counter(f"{p}_steps_started", "Steps started, by kind", ["kind"],
                                     registry=reg)
        self.steps_finished = Counter(f"{p}_steps_finished", "Steps finished or skipped, by kind",
                                      ["kind"], registry=reg)
        self.steps_failed = Counter(f"{p}_steps_failed", "Steps failed or escalated, by kind",
                                    ["kind"], registry=reg)
        self.step_duration = Histogram(f"{p}_step_duration_seconds",
                                       "Duration of finished steps, by kind", ["kind"],
                                       buckets=STEP_BUCKETS, registry=reg)
        self.escalations = Counter(f"{p}_escalations", "Escalations, by vendor condition",
                                   ["condition"], registry=reg)
        self.dma_requests = Counter(f"{p}_dma_requests", "DMA API requests, by outcome",
                                    ["cluster", "method", "outcome"], registry=reg)
        self.dma_latency = Histogram(f"{p}_dma_request_duration_seconds",
                                     "DMA API request latency", ["cluster", "method"],
                                     buckets=FAST_BUCKETS, registry=reg)
        self.slack_calls = Counter(f"{p}_slack_api_calls",
                                   "Slack Web API calls (every attempt, 429s included)",
                                   ["method", "outcome"], registry=reg)
        self.command_ack = Histogram(f"{p}_slash_command_ack_seconds",
                                     "Time from a slash command's arrival to its ack",
                                     buckets=FAST_BUCKETS, registry=reg)
        self.tick_lag = Histogram(f"{p}_worker_tick_lag_seconds",
                                  "How late the worker's tick started after its scheduled time",
                                  buckets=FAST_BUCKETS, registry=reg)
        self.claim_latency = Histogram(f"{p}_worker_claim_seconds",
                                       "Time one step claim (a transaction) takes",
                                       buckets=FAST_BUCKETS, registry=reg)
        self.registry.register(_StoredStateCollector(self))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


_lock = threading.Lock()
_current = Metrics()


def current() -> Metrics:
    """The metrics of this process."""
    return _current


def install(metrics: Metrics) -> Metrics:
    """Make `metrics` this process's metrics (tests start from zero); return the previous."""
    global _current
    with _lock:
        previous, _current = _current, metrics
    return previous


def watch_state(source: StateSource | None, slack: Callable[[], bool] | None = None) -> None:
    """Read runs by status and the outbox backlog (and whether Slack is up) at every scrape."""
    _current.state_source = source
    _current.slack_source = slack


# -- hooks: one line where a thing happens -----------------------------------------------------

STEP_COUNTERS = {"start": "steps_started", "finish": "steps_finished", "skip": "steps_finished",
                 "fail": "steps_failed", "escalate": "steps_failed"}


def step_event(kind: str, event: str, seconds: float | None = None) -> None:
    """Count a committed step transition; a finish also records how long the step took."""
    name = STEP_COUNTERS.get(event)
    if name is not None:
        getattr(_current, name).labels(kind=kind).inc()
    if event == "finish" and seconds is not None and seconds >= 0:
        _current.step_duration.labels(kind=kind).observe(seconds)


def escalation(condition: str) -> None:
    """Count an escalation (one of the vendor's conditions, or the bot's own checks)."""
    _current.escalations.labels(condition=condition or "unknown").inc()


def dma_request(cluster: str, method: str, outcome: str, seconds: float) -> None:
    """Count one DMA request and its latency."""
    _current.dma_requests.labels(cluster=cluster, method=method, outcome=outcome).inc()
    _current.dma_latency.labels(cluster=cluster, method=method).observe(seconds)


def slack_call(method: str, outcome: str) -> None:
    """Count one Slack Web API attempt (outcome: ok, ratelimited, an error name, http_5xx…)."""
    _current.slack_calls.labels(method=method, outcome=outcome).inc()


def command_acked(seconds: float) -> None:
    """Record a slash command's ack latency."""
    _current.command_ack.observe(seconds)


def tick_lag(seconds: float) -> None:
    """Record how late a worker tick started."""
    _current.tick_lag.observe(max(0.0, seconds))


def claim_latency(seconds: float) -> None:
    """Record how long a step claim took."""
    _current.claim_latency.observe(seconds)
