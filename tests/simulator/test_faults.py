"""Faults of the DMA simulator: each one shows the symptom the bot must escalate or survive."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.simulator import Fault, FaultKind, SimCluster, SimSupercluster
from tests.simulator.test_simulator import DROPPED, PKG_MINOR, Dma, Lab, install, upload


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def start_one(lab: Lab, *faults: Fault, **kw: Any) -> Dma:
    lab.start([SimCluster("dallas", estimated_install_minutes=35)],
              faults={"dallas": list(faults)}, **kw)
    return lab.dma("dallas")


def nodes(dma: Dma) -> list[tuple[str, str]]:
    return [(n["state"], n["packageVersion"])
            for n in dma.get("/high-availability/status")["nodeStateList"]]


def test_never_returns_keeps_the_cluster_unreachable_until_cleared(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.NEVER_RETURNS))
    install(lab, dallas)
    lab.minutes(35 * 10)
    assert {dallas.outcome() for _ in range(4)} == {DROPPED, 503}
    assert lab.sims[-1].state()["clusters"]["dallas"]["operation"]["hung"] is True

    lab.sims[-1].clear_faults("dallas")  # the vendor fixed it: it comes back from now on
    assert dallas.outcome() == 401
    lab.minutes(1)
    assert dallas.get("/installed-software")["systemVersion"] == "10.1.0.1"


def test_one_server_leaves_node_two_down(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.ONE_SERVER))
    install(lab, dallas)
    assert dallas.get("/installed-software")["systemVersion"] == "10.1.0.1"
    assert nodes(dallas) == [("UP", "10.1.0.1"), ("DOWN", "10.1.0.1")]
    assert "dallas: server 2 is DOWN" in dallas.get("/status")["alerts"]
    lab.sims[-1].clear_faults("dallas")  # the server is repaired
    assert nodes(dallas) == [("UP", "10.1.0.1"), ("UP", "10.1.0.1")]


def test_version_mismatch_leaves_node_two_on_the_old_version(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.VERSION_MISMATCH))
    install(lab, dallas)
    assert nodes(dallas) == [("UP", "10.1.0.1"), ("UP", "10.0.0.3")]
    rows = dallas.get("/installed-software")["upgradeHistory"]
    assert [(r["server"], r["toVersion"]) for r in rows] == [(1, "10.1.0.1"), (2, "10.0.0.3")]
    lab.sims[-1].clear_faults()  # only another install changes a server's package
    assert nodes(dallas) == [("UP", "10.1.0.1"), ("UP", "10.0.0.3")]


def test_link_down_breaks_the_private_link_after_the_install(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.LINK_DOWN))
    assert dallas.get("/high-availability/status")["haConnected"] is True
    install(lab, dallas)
    assert dallas.get("/high-availability/status")["haConnected"] is False
    lab.sims[-1].clear_faults()
    assert dallas.get("/high-availability/status")["haConnected"] is True


def test_history_failure_records_failures_although_the_versions_moved(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.HISTORY_FAILURE))
    install(lab, dallas)
    software = dallas.get("/installed-software")
    assert software["systemVersion"] == "10.1.0.1"
    assert [r["upgradeStatus"] for r in software["upgradeHistory"]] == ["UPGRADE_FAILURE"] * 2
    assert nodes(dallas) == [("UP", "10.1.0.1"), ("UP", "10.1.0.1")]


def test_slow_install_takes_factor_times_the_estimate(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.SLOW_INSTALL, factor=4))
    install(lab, dallas)  # waits the 35-minute estimate
    lab.minutes(35 * 3 - 2)
    assert dallas.outcome() in (DROPPED, 503)
    lab.minutes(1.5)
    assert dallas.outcome() == 401
    lab.minutes(1)
    assert dallas.get("/installed-software")["systemVersion"] == "10.1.0.1"


def test_a_fault_set_while_running_applies_to_the_running_install(lab: Lab) -> None:
    dallas = start_one(lab)
    upload(lab, dallas)
    dallas.post("/installed-software/upgrade-package/apply")
    lab.sims[-1].set_fault("dallas", Fault(FaultKind.ONE_SERVER))
    lab.minutes(36)
    assert nodes(dallas)[1][0] == "DOWN"


def flaky_outcomes(lab: Lab, seed: int, mode: str = "both") -> list[Any]:
    dallas = start_one(lab, Fault(FaultKind.FLAKY, probability=0.5, mode=mode), seed=seed)
    return [dallas.outcome("GET", "/status") for _ in range(40)]


def test_flaky_fails_requests_deterministically_for_a_seed(lab: Lab) -> None:
    first, again, other = (flaky_outcomes(lab, 7), flaky_outcomes(lab, 7),
                           flaky_outcomes(lab, 8))
    assert first == again
    assert first != other
    assert set(first) == {200, 503, DROPPED}
    assert 10 <= first.count(200) <= 30
    assert set(flaky_outcomes(lab, 7, mode="503")) == {200, 503}
    assert lab.sims[0].count("GET", "/status") == 40


def test_a_flaky_drop_can_come_after_the_work_was_done(lab: Lab) -> None:
    dallas = start_one(lab, Fault(FaultKind.FLAKY, probability=1.0, mode="drop"))
    for _ in range(10):
        assert dallas.outcome("POST", "/installed-software/upgrade-package/url",
                              json={"url": PKG_MINOR}) == DROPPED
    lab.sims[-1].clear_faults()
    lab.minutes(2)
    # Some of the dropped uploads reached the cluster: the client must check, not assume.
    assert dallas.get("/installed-software")["upgradeVersion"] == "10.1.0.1"


def test_join_fails_leaves_the_cluster_stand_alone(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")],
                    faults={"denver": [Fault(FaultKind.JOIN_FAILS)]})
    denver = lab.dma("denver")
    denver.post("/dma-supercluster", {"initialHost": [{"fqdn": "dma-dallas.sim"}]})
    lab.minutes(9)
    status = denver.get("/dma-supercluster/operation-status")
    assert (status["operationType"], status["state"]) == ("JOIN", "FAILED")
    assert sim.members_of("denver") == ["denver"] and sim.members_of("dallas") == ["dallas"]
    assert denver.get("/dma-supercluster")["clusters"][0]["status"] == "STANDALONE"


def test_slow_drain_keeps_busied_out_calls_going_for_its_minutes(lab: Lab) -> None:
    lab.start([SimCluster("dallas"), SimCluster("denver", active_calls=30)],
              [SimSupercluster("sc", ["dallas", "denver"])],
              faults={"denver": [Fault(FaultKind.SLOW_DRAIN, minutes=60)]})
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    dallas.post("/dma-supercluster/denver/set-service-status", {"serviceStatus": "BUSIED_OUT"},
                expect=200)
    lab.minutes(3)  # the normal drain time
    assert denver.get("/status")["activeCalls"] == 29
    assert dallas.refusal("DELETE", "/dma-supercluster/denver")[0] == 409
    lab.minutes(57)
    assert denver.get("/status")["activeCalls"] == 0
    assert dallas.request("DELETE", "/dma-supercluster/denver").status_code == 202
