"""The guide's smaller rules in a whole run: replication seen elsewhere, hosting restored, joins."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.engine_harness import harness

pytestmark = pytest.mark.slow


def test_full_outage_confirms_replication_elsewhere_restores_hosting_and_checks_joins(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        name = h.plan(strategy="full-outage")
        # Tick until the territory plan is recorded, then someone clears Americas' hosting flag.
        for _ in range(200):
            h.worker.tick()
            if h.steps(name)["record_territories"].status == "done":
                break
            h.clock.set(h.worker.next_due() or h.clock.now())
        client = h.worker.clients("dallas")
        americas = next(t for t in client.territories() if t.territory_id == "t-americas")
        client.update_territory(replace(americas, conference_room_host=False))
        assert h.drive(name) == "completed"

        # The recorded plan, hosting included, is back.
        restored = {t.territory_id: t for t in h.sim.territories_of("dallas")}
        assert restored["t-americas"].conference_room_host is True
        # Each territory change is confirmed on another member than the one it was sent to.
        steps = h.steps(name)
        for key in ("reassign_territories", "restore_territories"):
            assert steps[key].data["confirmed_via"] not in (None, "dallas"), key
        puts = [i for i, r in enumerate(h.sim.requests) if r.method == "PUT"]
        witness = steps["restore_territories"].data["confirmed_via"]
        assert any(r.cluster == witness and r.path == "/territories"
                   for r in h.sim.requests[puts[-1]:])
        # Each join was checked with the operation status (COMPLETE) and no warnings.
        for cluster in ("denver", "austin"):
            assert steps[f"join:{cluster}"].data["operation"] == "COMPLETE"
            assert steps[f"join:{cluster}"].data["warnings"] == []
            assert h.sim.count("GET", "/dma-supercluster/operation-status", cluster) >= 1


def test_an_install_that_did_not_take_is_its_own_verdict(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["lab=install-not-taken"]) as h:
        name = h.plan(target="lab")
        assert h.drive(name) == "escalated"
        assert h.escalations(name) == [("lab", "install-not-taken")]
        prompt = next(t for t in h.sink.texts() if "escalation on *lab*" in t)
        assert "The install did not take" in prompt
        assert "not one of the vendor's three conditions" in prompt
        assert "versions are not the same" not in prompt
