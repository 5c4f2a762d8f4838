"""Two approvals given at the same moment (two Slack events, two listener threads) reach the
quorum: approvals of one run are counted one after the other."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import FakeClock
from bot.config import load_settings
from bot.engine.guide import CHECKLIST_ACKS
from bot.engine.planner import ClusterFacts, PlanRequest, make_plan
from bot.services import Services
from tests.support.workspace import CONFIG


def no_clusters(name: str) -> object:
    raise AssertionError("approving reads no cluster")


@pytest.mark.timeout(60)
def test_simultaneous_approvals_start_the_run(session_factory: sessionmaker[Session]) -> None:
    settings = load_settings(CONFIG)
    services = Services(settings=settings, sessions=session_factory, clock=FakeClock(),
                        clients=no_clusters)  # type: ignore[arg-type]
    plan = make_plan(PlanRequest(target="lab", target_kind="cluster", territories=(),
                                 clusters=(ClusterFacts("lab", 1, "10.0.0.3"),),
                                 to_version="10.1.0.1"))
    names = []
    for _ in range(8):
        name = services.submit(plan, requester="U0OPERATOR", channel="C0UPGRADES")
        for item in CHECKLIST_ACKS:  # the operator has done the checklist
            services.acknowledge(name, item, "U0OPERATOR")
        names.append(name)
        barrier = threading.Barrier(2)

        def approve(user: str, name: str = name, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            services.approve(name, user, source="reaction", approvers={"U1", "U2"})

        threads = [threading.Thread(target=approve, args=(u,)) for u in ("U1", "U2")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert services.summary(name).status == "running", name
        services.control(name, "abort", "U0OPERATOR")  # frees lab for the next plan
