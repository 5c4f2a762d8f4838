"""The in-process transport against loopback HTTP: the real DmaClient must see the same outcomes.

Each scenario is played twice on identical simulators (same seed, same virtual time): once over
a real loopback socket, once through `DmaSimulator.session()`. What the client returns or raises
(error class, reason, request_sent, status, message) and what the simulator logged must be equal,
so tests that drive the simulator in process still exercise the client's real error mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests

from bot.clock import FakeClock
from bot.dma.client import DmaClient
from bot.dma.errors import DmaError, DmaNotReachable
from bot.simulator import IN_PROCESS_URL, DmaSimulator, Fault, FaultKind, SimCluster

PASSWORD = "sim-secret-pw"
PACKAGE = "https://pkgs.example/dma-10.1.0.1.bin"
Outcome = tuple[Any, ...]


@dataclass
class Side:
    """One simulator reached over one transport, with a client factory and recorded sleeps."""

    sim: DmaSimulator
    clock: FakeClock
    session: Callable[[], requests.Session | None]
    sleeps: list[float] = field(default_factory=list)

    def client(self, *, password: str = PASSWORD, retries: int = 0,
               timeout: float = 2.0) -> DmaClient:
        return DmaClient(self.sim.url_for("dallas"), username="admin", password=password,
                         retries=retries, timeout=timeout, sleep=self.sleeps.append,
                         session=self.session(), name="dallas")

    def minutes(self, m: float) -> None:
        self.clock.advance(timedelta(minutes=m))


def outcome(call: Callable[[], Any]) -> Outcome:
    """What the client gave back: its answer, or its error without the transport's address."""
    try:
        return ("ok", call())
    except DmaNotReachable as exc:
        return (type(exc).__name__, exc.reason, exc.request_sent, exc.status, _plain(exc))
    except DmaError as exc:
        return (type(exc).__name__, exc.status, _plain(exc))


def _plain(exc: DmaError) -> str:
    return re.sub(r"https?://[^/\s)]+", "<dma>", exc.message)


def start_install(side: Side) -> DmaClient:
    """Upload the package, apply it: the cluster is restarting when this returns."""
    client = side.client()
    client.upload_package_url(PACKAGE, None)
    side.minutes(2)
    client.apply_upgrade()
    side.minutes(1)
    return client


def answers(side: Side) -> list[Outcome]:
    client = side.client()
    return [outcome(client.installed_software), outcome(client.ha_status),
            outcome(client.status), outcome(client.supercluster)]


def wrong_password(side: Side) -> list[Outcome]:
    client = side.client(password="wrong")
    return [outcome(client.status), outcome(client.apply_upgrade), outcome(client.can_log_in)]


def stopped(side: Side) -> list[Outcome]:
    client = side.client(retries=1)
    side.sim.stop()
    return [outcome(client.status), outcome(client.apply_upgrade), outcome(client.can_log_in)]


def restarting(side: Side) -> list[Outcome]:
    client = start_install(side)
    return [*(outcome(client.status) for _ in range(4)), outcome(client.rollback),
            outcome(client.rollback)]


def starting(side: Side) -> list[Outcome]:
    client = start_install(side)
    side.minutes(34.5)  # the install is over; logins are refused until a minute after it
    first = [outcome(client.installed_software), outcome(client.can_log_in)]
    side.minutes(1)
    return [*first, outcome(client.can_log_in), outcome(lambda: client.status().active_calls)]


def never_returns(side: Side) -> list[Outcome]:
    client = start_install(side)
    side.minutes(35 * 10)
    return [outcome(client.installed_software) for _ in range(4)]


def flaky(side: Side) -> list[Outcome]:
    client = side.client(retries=2, timeout=0.3)  # a silent server costs 0.3 s over HTTP
    return [outcome(client.status), outcome(client.apply_upgrade),
            outcome(lambda: client.upload_package_url(PACKAGE, None))]


# name, faults of dallas, scenario, error reasons that must appear (so the scenario bites)
SCENARIOS: list[tuple[str, list[Fault], Callable[[Side], list[Outcome]], set[str]]] = [
    ("answers", [], answers, set()),
    ("wrong-password", [], wrong_password, {"unauthorized"}),
    ("stopped", [], stopped, {"refused"}),
    ("restarting", [], restarting, {"dropped", "unavailable"}),
    ("starting", [], starting, {"unauthorized"}),
    ("never-returns", [Fault(FaultKind.NEVER_RETURNS)], never_returns,
     {"dropped", "unavailable"}),
    ("flaky-503", [Fault(FaultKind.FLAKY, probability=1.0, mode="503")], flaky,
     {"unavailable"}),
    ("flaky-drop", [Fault(FaultKind.FLAKY, probability=1.0, mode="drop")], flaky,
     {"dropped"}),
    ("flaky-hang", [Fault(FaultKind.FLAKY, probability=1.0, mode="hang")], flaky,
     {"timeout"}),
]


@contextmanager
def side(faults: list[Fault], *, http: bool) -> Iterator[Side]:
    clock = FakeClock()
    sim = DmaSimulator([SimCluster("dallas", estimated_install_minutes=35)],
                       packages={PACKAGE: "10.1.0.1"}, clock=clock, username="admin",
                       password=PASSWORD, seed=7, faults={"dallas": faults})
    try:
        if http:
            sim.start()
            yield Side(sim, clock, lambda: None)
        else:
            yield Side(sim, clock, sim.session)
    finally:
        sim.stop()


def play(scenario: Callable[[Side], list[Outcome]], faults: list[Fault], *,
         http: bool) -> tuple[list[Outcome], list[float], list[tuple[str, str, int | None]]]:
    with side(faults, http=http) as s:
        if not http:
            assert s.sim.url_for("dallas").startswith(IN_PROCESS_URL)
        outcomes = scenario(s)
        log = [(r.method, r.path, r.status) for r in s.sim.requests]
        return outcomes, s.sleeps, log


@pytest.mark.parametrize(("faults", "scenario", "reasons"),
                         [pytest.param(f, s, r, id=name) for name, f, s, r in SCENARIOS])
def test_the_client_sees_the_same_outcomes_over_http_and_in_process(
        faults: list[Fault], scenario: Callable[[Side], list[Outcome]], reasons: set[str]) -> None:
    over_http = play(scenario, faults, http=True)
    in_process = play(scenario, faults, http=False)
    assert in_process == over_http
    outcomes = over_http[0]
    seen = {o[1] for o in outcomes if o[0] == DmaNotReachable.__name__}
    assert seen == reasons, outcomes
    assert any(o[0] == "ok" for o in outcomes) or reasons


def test_an_in_process_session_leaves_other_addresses_to_the_network() -> None:
    sim = DmaSimulator([SimCluster("dallas")], clock=FakeClock())
    with sim.session() as session:
        assert session.get_adapter(sim.url_for("dallas")).__class__.__name__ == \
            "InProcessAdapter"
        assert session.get_adapter("http://127.0.0.1:1/x").__class__.__name__ == "HTTPAdapter"
    with sim:  # started: the URLs are real loopback addresses
        assert sim.url_for("dallas").startswith("http://127.0.0.1:")
