"""Whole upgrades against the simulator, in virtual time: each strategy, as the guide says."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from bot.simulator import parse_fault
from tests.support.engine_harness import Harness, harness
from tests.worker.test_incremental import drive_through_pauses

pytestmark = pytest.mark.slow  # whole upgrades in virtual time

TERRITORIES = {"t-americas": ("dallas", "denver"), "t-west": ("denver", "austin"),
               "t-south": ("austin", "dallas")}


def at(when: datetime | None) -> datetime:
    """A step's start or finish, which a completed run's steps all have."""
    assert when is not None
    return when


def assignments(h: Harness, via: str = "dallas") -> dict[str, tuple[str | None, str | None]]:
    return {t.territory_id: (t.primary, t.backup) for t in h.sim.territories_of(via)}


@pytest.mark.parametrize("strategy", ["full-outage", "incremental"])
def test_incompatible_supercluster_upgrade_completes(database_url: str, strategy: str) -> None:
    with harness(database_url) as h:
        # An operator plans 10.0.0.3 -> 10.1.0.1 (minor: incompatible) and two approvers agree.
        name = h.plan(strategy=strategy)
        assert h.run(name).status == "running"

        # The worker runs every step; the simulator refuses anything out of the vendor's order.
        # (An incremental run pauses for the people's work after each cluster: they say done.)
        assert drive_through_pauses(h, name)[0] == "completed"

        # Every cluster is on the target, installed once, and the supercluster is re-formed
        # around dallas (cluster A) with the recorded territories back in place.
        for cluster in ("dallas", "denver", "austin"):
            assert h.sim.version_of(cluster) == "10.1.0.1"
            assert h.applies(cluster) == 1
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
        assert assignments(h) == TERRITORIES
        assert all(t.active == t.primary for t in h.sim.territories_of("dallas"))
        # Joins go to cluster A, never A to another cluster.
        joins = [r for r in h.sim.requests if r.method == "POST" and r.path == "/dma-supercluster"]
        seed = h.run(name).plan["seed"]
        assert sorted(r.cluster for r in joins) == sorted({"dallas", "denver", "austin"} - {seed})
        # One verification reply per cluster, a final check and a completion notice.
        texts = h.sink.texts()
        for cluster in ("dallas", "denver", "austin"):
            assert any(f"{cluster} verified" in t for t in texts), texts
        assert any("final check of global" in t for t in texts)
        assert any("completed" in t for t in texts)


def test_full_outage_installs_side_by_side(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(strategy="full-outage")
        assert h.drive(name) == "completed"
        steps = h.steps(name)
        installs = [steps[f"wait_login:{c}"] for c in ("dallas", "denver", "austin")]
        # The three clusters restart at the same time: their installs overlap.
        latest_start = max(at(steps[f"install:{c}"].started_at) for c in ("denver", "austin"))
        assert all(at(s.finished_at) > latest_start for s in installs)


def test_incremental_takes_longer_than_full_outage(database_url: str) -> None:
    with harness(database_url) as h:
        full = h.services.plan("global", "10.1.0.1", "full-outage")
        incremental = h.services.plan("global", "10.1.0.1", "incremental")
        assert incremental.total_estimate_s > 1.5 * full.total_estimate_s
        assert len(incremental.factors) == 10 and not full.factors


def test_patch_upgrade_goes_cluster_by_cluster_in_service(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(version="10.0.0.4")
        assert h.run(name).strategy == "basic"
        assert h.drive(name) == "completed"
        for cluster in ("dallas", "denver", "austin"):
            assert h.sim.version_of(cluster) == "10.0.0.4"
            assert h.applies(cluster) == 1
        # The supercluster never broke up: no cluster was removed or joined.
        assert not [r for r in h.sim.requests if r.method == "DELETE"]
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
        assert assignments(h) == TERRITORIES


def test_standalone_cluster_gets_the_basic_procedure(database_url: str) -> None:
    with harness(database_url) as h:
        name = h.plan(target="lab")
        assert h.run(name).strategy == "basic"
        assert h.drive(name) == "completed"
        assert h.sim.version_of("lab") == "10.1.0.1"
        assert h.applies("lab") == 1


def test_flaky_clusters_still_get_exactly_one_install_each(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        flaky_upgrade_installs_once(h)


def test_a_flaky_cluster_over_loopback_http_still_installs_once(sqlite_url: str) -> None:
    # The simulator on a real socket (the in-process transport elsewhere): the real client
    # meets real closed connections and 503s, half of them after the cluster acted.
    with harness(sqlite_url, faults=["lab=flaky:0.3"], http=True) as h:
        assert h.sim.url_for("lab").startswith("http://127.0.0.1:")
        name = h.plan(target="lab")
        assert h.drive(name) == "completed"
        assert h.sim.version_of("lab") == "10.1.0.1"
        assert h.installs("lab", "10.1.0.1") == 1
        assert [r for r in h.sim.requests if r.status is None]  # some were really dropped


def flaky_upgrade_installs_once(h: Harness) -> None:
    name = h.plan(strategy="full-outage")
    # From now on one request in five is answered 503 or dropped, sometimes after the
    # cluster acted on it; the client does not retry (retries=0), the worker must cope.
    for cluster in ("dallas", "denver", "austin"):
        h.sim.set_fault(*parse_fault(f"{cluster}=flaky:0.2"))
    assert h.drive(name) == "completed"
    # A request dropped before the cluster saw it is sent again; one the cluster acted on
    # never is: each cluster installed exactly once.
    for cluster in ("dallas", "denver", "austin"):
        assert h.sim.version_of(cluster) == "10.1.0.1"
        assert h.installs(cluster, "10.1.0.1") == 1
    # No join was sent twice to a cluster already joining (the cluster would refuse: 409).
    joins = [r for r in h.sim.requests if r.method == "POST" and r.path == "/dma-supercluster"]
    assert {r.cluster for r in joins} == {"austin", "denver"}
    assert not [r for r in joins if r.status == 409]
    assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]


def test_install_limit_keeps_restarts_apart(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        h.settings = h.worker.settings = h.settings.model_copy(update={
            "timing": h.settings.timing.model_copy(update={"max_parallel_installs": 1})})
        name = h.plan(strategy="full-outage")
        assert h.drive(name) == "completed"
        steps = h.steps(name)
        # With one slot, a cluster's install starts only once the previous one is verified.
        windows = sorted((at(steps[f"install:{c}"].started_at),
                          at(steps[f"verify:{c}"].finished_at))
                         for c in ("dallas", "denver", "austin"))
        for (_, verified), (started, _) in itertools.pairwise(windows):
            assert started >= verified


def test_patch_run_leaves_out_a_cluster_already_on_the_target(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        # Someone patched dallas by hand (compatible, so allowed while superclustered).
        dallas = h.worker.clients("dallas")
        dallas.upload_package_url(h.settings.packages["10.0.0.4"].url, None)
        h.clock.advance(600)
        dallas.apply_upgrade()
        h.clock.advance(3600)
        assert h.sim.version_of("dallas") == "10.0.0.4"
        # The plan leaves dallas out; the pre-flight and the final check still see all three.
        assert h.services.plan("global", "10.0.0.4").order == ("denver", "austin")
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "completed"
        assert h.applies("dallas") == 1 and h.applies("denver") == 1
        assert {h.sim.version_of(c) for c in ("dallas", "denver", "austin")} == {"10.0.0.4"}
