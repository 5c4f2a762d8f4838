"""A faithful incremental upgrade: no territory unserved, released where it left, paused for people.

The simulator checks on every request that each territory has a cluster in service managing it
(primary or backup) in one of the two superclusters; the plan says no territory goes unserved.
"""

from __future__ import annotations

import pytest

from tests.support.engine_harness import Harness, harness

pytestmark = pytest.mark.slow


def drive_through_pauses(h: Harness, name: str) -> tuple[str, list[str]]:
    """Drive the run; at each people's-work pause an operator says "Done, continue"."""
    pauses: list[str] = []
    while True:
        status = h.drive(name)
        blocked = [s for s in h.steps(name).values() if s.status == "blocked"]
        if status != "paused" or not blocked or blocked[0].kind != "people_work":
            return status, pauses
        pauses.append(blocked[0].key)
        h.services.control(name, "resume", "U0OPERATOR")


def test_the_bundled_incremental_keeps_every_territory_served(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        plan = h.services.plan("global", "10.1.0.1", "incremental")
        # By load (denver 2 calls, austin 2, dallas 2 and hosting conference rooms: last).
        assert plan.order[-1] == "dallas"
        assert any(r.startswith("Order by load") for r in plan.reasons)
        assert any("of people's work after each cluster joins" in r for r in plan.reasons)
        h.sim.watch_service()
        name = h.plan(strategy="incremental")
        status, pauses = drive_through_pauses(h, name)
        assert status == "completed"
        # One pause per cluster, each with its "Done, continue" button in the thread.
        assert pauses == [f"people_work:{c}" for c in plan.order]
        assert any("Done, continue" in str(m.payload.get("blocks")) for m in h.sink.sent)
        assert h.sim.breaches == []
        for cluster in plan.order:
            assert h.sim.version_of(cluster) == "10.1.0.1"
            assert h.applies(cluster) == 1
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
        # The recorded plan is back, hosting included.
        shown = {t.territory_id: (t.primary, t.backup, t.conference_room_host)
                 for t in h.sim.territories_of("dallas")}
        assert shown == {"t-americas": ("dallas", "denver", True),
                         "t-west": ("denver", "austin", False),
                         "t-south": ("austin", "dallas", False)}


def test_a_territory_moved_into_the_new_supercluster_is_released_in_the_old_one(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(strategy="incremental")
        order = h.run(name).plan["order"]
        # Drive to the first pause: the seed is in the new supercluster with its territories.
        assert h.drive(name) == "paused"
        seed, rest = order[0], order[1:]
        new = {t.territory_id: t for t in h.sim.territories_of(seed)}
        old = {t.territory_id: t for t in h.sim.territories_of(rest[-1])}
        moved = [tid for tid, t in new.items() if t.primary == seed]
        assert moved
        for tid in moved:
            assert (old[tid].primary, old[tid].backup) == (None, None)
            assert new[tid].active == seed
        # The others are served in the old supercluster and released in the new one.
        for tid in set(new) - set(moved):
            assert (new[tid].primary, new[tid].backup) == (None, None)
            assert old[tid].active in rest


@pytest.mark.timeout(360)  # five whole cluster upgrades: about 40 s idle, minutes on a loaded host
def test_five_clusters_incremental_keeps_every_territory_served(sqlite_url: str) -> None:
    with harness(sqlite_url, config="five.yml") as h:
        plan = h.services.plan("global", "10.1.0.1", "incremental")
        # boston (no calls) first; the conference-room hosts dallas and seattle leave last.
        assert plan.order[0] == "boston" and set(plan.order[-2:]) == {"dallas", "seattle"}
        h.sim.watch_service()
        name = h.plan(strategy="incremental")
        status, pauses = drive_through_pauses(h, name)
        assert status == "completed", h.sink.texts()[-3:]
        assert len(pauses) == 5
        assert h.sim.breaches == []
        assert sorted(h.sim.members_of("boston")) == sorted(plan.order)
