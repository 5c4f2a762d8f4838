"""The simulator's rollback rules: 409 while a member, 409 with nothing to undo, join direction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.simulator import Fault, FaultKind, SimCluster
from tests.simulator.test_simulator import Lab, install
from tests.simulator.test_supercluster import join_body, members, old_supercluster


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def test_a_member_cannot_roll_back_and_says_how_to_leave(lab: Lab) -> None:
    old_supercluster(lab)
    status, message = lab.dma("denver").refusal("POST", "/installed-software/rollback")
    assert status == 409
    # Nothing was installed yet: the first rule that fails is "nothing to roll back".
    assert "nothing to roll back" in message


def test_a_rolled_back_cluster_joins_another_never_the_reverse(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")])
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    install(lab, denver)
    denver.post("/installed-software/rollback")
    lab.minutes(7)
    assert sim.version_of("denver") == "10.0.0.3"
    # dallas joining the rolled-back denver would replace dallas's data with denver's old one.
    status, message = dallas.refusal("POST", "/dma-supercluster", join_body("denver"))
    assert status == 409 and "was rolled back" in message and "Join denver to dallas" in message
    # The right direction: denver joins dallas.
    denver.post("/dma-supercluster", join_body("dallas"))
    lab.minutes(10)
    assert members(dallas) == {"dallas": "SUPERCLUSTERED", "denver": "SUPERCLUSTERED"}


@pytest.mark.parametrize(("kind", "node_state", "node_version"), [
    (FaultKind.ROLLBACK_ONE_SERVER, "DOWN", "10.0.0.3"),
    (FaultKind.ROLLBACK_VERSION_MISMATCH, "UP", "10.1.0.1"),
])
def test_rollback_faults_break_the_second_server(lab: Lab, kind: FaultKind, node_state: str,
                                                 node_version: str) -> None:
    sim = lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    install(lab, dallas)
    sim.set_fault("dallas", Fault(kind))
    dallas.post("/installed-software/rollback")
    lab.minutes(7)
    second = dallas.get("/high-availability/status")["nodeStateList"][1]
    assert (second["state"], second["packageVersion"]) == (node_state, node_version)


def test_a_rollback_that_never_returns_stays_unreachable(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas")])
    dallas = lab.dma("dallas")
    install(lab, dallas)
    sim.set_fault("dallas", Fault(FaultKind.NEVER_RETURNS))
    dallas.post("/installed-software/rollback")
    lab.minutes(60)
    assert dallas.outcome() != 200
