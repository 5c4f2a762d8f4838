"""Supercluster rules of the DMA simulator: the 409s that catch a bot skipping a vendor step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.simulator import DmaSimulator, SimCluster, SimSupercluster, SimTerritory
from tests.simulator.test_simulator import DROPPED, PKG_MINOR, PKG_PATCH, Dma, Lab, install, upload


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


def old_supercluster(lab: Lab, **kw: Any) -> DmaSimulator:
    """Three clusters on 10.0.0.3 sharing three territories; dallas is the seed."""
    return lab.start(
        [SimCluster("dallas"), SimCluster("denver", active_calls=6), SimCluster("austin"),
         SimCluster("boston", version="9.1.0.2")],
        [SimSupercluster("old", ["dallas", "denver", "austin"], [
            SimTerritory("t-am", "Americas", "dallas", "denver", conference_room_host=True),
            SimTerritory("t-eu", "EMEA", "denver", "austin"),
            SimTerritory("t-ap", "APAC", "austin", "dallas")])], **kw)


def put_territory(dma: Dma, tid: str, primary: str | None, backup: str | None,
                  **changes: Any) -> dict[str, Any]:
    t = dma.get(f"/territories/{tid}")
    r = dma.request("PUT", f"/territories/{tid}", headers={"If-Match": t["entityTag"]},
                    json={**t, "primaryNodeIdentifier": primary, "backupNodeIdentifier": backup,
                          **changes})
    assert r.status_code == 200, r.text
    return dict(r.json())


def set_service(dma: Dma, cluster: str, status: str) -> None:
    dma.post(f"/dma-supercluster/{cluster}/set-service-status", {"serviceStatus": status},
             expect=200)


def join_body(target: str) -> dict[str, Any]:
    return {"initialHost": [{"fqdn": f"dma-{target}.sim", "port": 8443}]}


def members(dma: Dma) -> dict[str, str]:
    return {m["clusterId"]: m["status"] for m in dma.get("/dma-supercluster")["clusters"]}


def test_every_member_lists_the_whole_supercluster(lab: Lab) -> None:
    old_supercluster(lab)
    view = lab.dma("austin").get("/dma-supercluster")
    assert [(m["clusterId"], m["hostName"], m["status"], m["serviceStatus"], m["version"])
            for m in view["clusters"]] == [
        ("dallas", "dma-dallas.sim", "SUPERCLUSTERED", "IN_SERVICE", "10.0.0.3"),
        ("denver", "dma-denver.sim", "SUPERCLUSTERED", "IN_SERVICE", "10.0.0.3"),
        ("austin", "dma-austin.sim", "SUPERCLUSTERED", "IN_SERVICE", "10.0.0.3")]
    assert view["warnings"] == []
    assert members(lab.dma("boston")) == {"boston": "STANDALONE"}


def test_check_compatibility_compares_major_and_minor(lab: Lab) -> None:
    old_supercluster(lab)
    dallas = lab.dma("dallas")
    check = "/dma-supercluster/check-compatibility?dmaVersion="
    assert dallas.get(check + "10.0.2.9J")["compatible"] is True
    assert dallas.get(check + "10.1.0.1")["compatible"] is False
    assert dallas.refusal("GET", check)[0] == 400


def test_an_incompatible_apply_is_refused_while_superclustered(lab: Lab) -> None:
    old_supercluster(lab)
    dallas = lab.dma("dallas")
    upload(lab, dallas, PKG_MINOR)
    status, message = dallas.refusal("POST", "/installed-software/upgrade-package/apply")
    assert status == 409 and "must leave the supercluster" in message
    status, message = dallas.refusal("POST", "/installed-software/rollback")
    assert status == 409


def test_a_patch_install_keeps_the_member_listed_with_a_warning(lab: Lab) -> None:
    sim = old_supercluster(lab)
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    upload(lab, dallas, PKG_PATCH)
    dallas.post("/installed-software/upgrade-package/apply")
    view = denver.get("/dma-supercluster")
    assert "dallas" in {m["clusterId"] for m in view["clusters"]}
    assert any("dallas" in w for w in view["warnings"])
    status, message = denver.refusal("DELETE", "/dma-supercluster/dallas")
    assert status == 409 and "restarting" in message
    lab.minutes(36)
    assert denver.get("/dma-supercluster")["warnings"] == []
    assert sim.version_of("dallas") == "10.0.1.4"
    assert sim.members_of("dallas") == ["dallas", "denver", "austin"]


def test_removing_a_cluster_checks_territories_service_calls_and_membership(lab: Lab) -> None:
    old_supercluster(lab)
    dallas, denver = lab.dma("dallas"), lab.dma("denver")

    def refused(cluster: str) -> str:
        status, message = dallas.refusal("DELETE", f"/dma-supercluster/{cluster}")
        assert status == 409
        return message

    assert "t-am, t-eu" in refused("denver")  # primary of one, backup of another
    put_territory(dallas, "t-am", "dallas", "austin")
    put_territory(dallas, "t-eu", "austin", "dallas")
    assert "t-am, t-eu" in refused("denver")  # not replicated yet
    lab.clock.advance(20)
    assert "IN_SERVICE" in refused("denver")
    set_service(dallas, "denver", "BUSIED_OUT")
    assert "6 active calls" in refused("denver")
    lab.minutes(1.5)
    assert denver.get("/status")["activeCalls"] == 3  # draining linearly over three minutes
    lab.minutes(1.5)
    assert denver.get("/status")["activeCalls"] == 0
    assert "not a member" in refused("boston")

    assert dallas.request("DELETE", "/dma-supercluster/denver").json()["operationType"] == "LEAVE"
    assert members(dallas) == {"dallas": "SUPERCLUSTERED", "denver": "LEAVING",
                               "austin": "SUPERCLUSTERED"}
    assert "restarting" in refused("denver")


def test_joining_is_refused_when_incompatible_already_a_member_or_unknown(lab: Lab) -> None:
    old_supercluster(lab)
    boston, denver = lab.dma("boston"), lab.dma("denver")
    status, message = boston.refusal("POST", "/dma-supercluster", join_body("dallas"))
    assert status == 409 and "not compatible" in message
    status, message = denver.refusal("POST", "/dma-supercluster", join_body("boston"))
    assert status == 409 and "already a member" in message
    status, message = boston.refusal("POST", "/dma-supercluster",
                                     {"initialHost": [{"fqdn": "dma-paris.sim"}]})
    assert status == 409 and "dma-paris.sim" in message
    assert boston.refusal("POST", "/dma-supercluster", {"initialHost": []})[0] == 400


def test_joining_twice_is_refused(lab: Lab) -> None:
    lab.start([SimCluster("dallas"), SimCluster("denver"), SimCluster("austin")])
    denver, austin = lab.dma("denver"), lab.dma("austin")
    denver.post("/dma-supercluster", join_body("dallas"))
    status, message = denver.refusal("POST", "/dma-supercluster", join_body("dallas"))
    assert status == 409 and "join operation is in progress" in message
    upload(lab, denver)
    status, message = denver.refusal("POST", "/installed-software/upgrade-package/apply")
    assert status == 409 and "join operation is in progress" in message
    status, message = lab.dma("dallas").refusal("POST", "/dma-supercluster", join_body("austin"))
    assert status == 409 and "another cluster is joining dallas" in message
    status, _ = austin.refusal("POST", "/dma-supercluster", join_body("dallas"))
    assert status == 409  # one join at a time
    lab.minutes(7)
    assert members(denver) == {"dallas": "SUPERCLUSTERED", "denver": "SUPERCLUSTERED"}
    status, message = denver.refusal("POST", "/dma-supercluster", join_body("austin"))
    assert status == 409 and "already a member" in message


def test_a_join_reports_progress_then_restarts_and_completes(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")])
    dallas, denver = lab.dma("dallas"), lab.dma("denver")
    denver.post("/dma-supercluster", join_body("dallas"))
    lab.minutes(2)
    progress = denver.get("/dma-supercluster/operation-status")
    assert (progress["operationType"], progress["state"]) == ("JOIN", "IN_PROGRESS")
    assert progress["percentageComplete"] == 25
    assert members(dallas) == {"dallas": "STANDALONE", "denver": "JOINING"}
    lab.minutes(3)
    assert denver.outcome() in (DROPPED, 503)  # the second half of the join restarts it
    assert denver.outcome() in (DROPPED, 503)
    lab.minutes(3.5)
    assert denver.outcome() == 401
    lab.minutes(1)
    done = denver.get("/dma-supercluster/operation-status")
    assert (done["state"], done["percentageComplete"]) == ("COMPLETE", 100)
    assert members(denver) == {"dallas": "SUPERCLUSTERED", "denver": "SUPERCLUSTERED"}
    assert sim.members_of("dallas") == ["dallas", "denver"]


def test_the_joining_clusters_own_data_is_discarded(lab: Lab) -> None:
    sim = lab.start([SimCluster("dallas"), SimCluster("denver")], [
        SimSupercluster("a", ["dallas"], [SimTerritory("t-a", "Seed's", "dallas")]),
        SimSupercluster("b", ["denver"], [SimTerritory("t-b", "Joiner's", "denver")])])
    lab.dma("dallas").post("/dma-supercluster", join_body("denver"))  # the wrong direction
    lab.minutes(10)
    assert [t.territory_id for t in sim.territories_of("dallas")] == ["t-b"]
    assert [t.territory_id for t in sim.territories_of("denver")] == ["t-b"]


def test_an_incompatible_supercluster_upgrade_by_hand_in_the_vendor_order(lab: Lab) -> None:
    sim = old_supercluster(lab)
    dallas, denver, austin = lab.dma("dallas"), lab.dma("denver"), lab.dma("austin")
    # Record the territory plan.
    plan = {t["territoryIdentifier"]: (t["primaryNodeIdentifier"], t["backupNodeIdentifier"])
            for t in dallas.get("/territories")["territories"]}

    # Reassign every territory to the seed, wait for replication, take the others out.
    for tid in plan:
        put_territory(dallas, tid, "dallas", None)
    lab.clock.advance(20)
    for name in ("denver", "austin"):
        set_service(dallas, name, "OUT_OF_SERVICE")
        dallas.request("DELETE", f"/dma-supercluster/{name}")
    lab.minutes(5)
    assert members(dallas) == {"dallas": "STANDALONE"}
    assert members(denver) == {"denver": "STANDALONE"}
    # The leaver kept a copy of the shared data; change it to see that the seed's wins.
    put_territory(denver, "t-am", "denver", None, name="Denver's own copy")

    # Upgrade each as a stand-alone cluster.
    for dma in (dallas, denver, austin):
        install(lab, dma)
    assert {sim.version_of(n) for n in ("dallas", "denver", "austin")} == {"10.1.0.1"}

    # Join each to the seed, one at a time, checking each join.
    for dma in (denver, austin):
        dma.post("/dma-supercluster", join_body("dallas"))
        lab.minutes(9)
        assert dma.get("/dma-supercluster/operation-status")["state"] == "COMPLETE"
        assert denver.get("/territories/t-am")["name"] == "Americas"

    # Restore the recorded plan and return everyone to service.
    for tid, (primary, backup) in plan.items():
        put_territory(dallas, tid, primary, backup)
    for name in ("denver", "austin"):
        set_service(dallas, name, "IN_SERVICE")
    lab.clock.advance(20)

    view = austin.get("/dma-supercluster")
    assert view["warnings"] == []
    assert {(m["clusterId"], m["status"], m["version"]) for m in view["clusters"]} == {
        (n, "SUPERCLUSTERED", "10.1.0.1") for n in ("dallas", "denver", "austin")}
    assert {t["territoryIdentifier"]: t["activeNodeIdentifier"]
            for t in denver.get("/territories")["territories"]} == {
        tid: primary for tid, (primary, _) in plan.items()}
