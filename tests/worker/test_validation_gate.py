"""The validation gate: read at the plan and at the start; a failure or drift stops the start."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.simulator import parse_fault
from tests.support.engine_harness import Harness, harness
from tests.worker.test_vendor_order import run_plan

pytestmark = pytest.mark.slow


def stopped_notice(h: Harness) -> str:
    return next(t for t in h.sink.texts() if t.startswith("⛔ R1 — did not start"))


def test_the_dma_saying_incompatible_turns_a_patch_into_the_incompatible_procedure(
        sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["dallas=says-incompatible"]) as h:
        plan = h.services.plan("global", "10.0.0.4")
        # Version arithmetic says "patch"; the supercluster's own answer wins.
        assert plan.strategy.value == "full-outage"
        assert any("compatibility check says 10.0.0.4 is not compatible; that answer wins" in r
                   for r in plan.reasons)
        row = next(r for r in plan.prechecks if r.check == "check-compatibility")
        assert row.fact == "not compatible"
        # And one member alone may not take it either.
        with pytest.raises(Exception, match="member of supercluster global"):
            h.services.plan("denver", "10.0.0.4")


def test_the_plan_shows_the_pre_check_table_and_its_digest_covers_the_facts(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        plan = h.services.plan("global", "10.1.0.1", "full-outage")
        checks = {(r.cluster, r.check) for r in plan.prechecks}
        for cluster in ("dallas", "denver", "austin"):
            for check in ("servers up", "private link", "alerts", "service",
                          "calls and registrations"):
                assert (cluster, check) in checks
        for check in ("membership", "supercluster warnings", "territory plan",
                      "check-compatibility"):
            assert ("global", check) in checks
        assert all(r.ok for r in plan.prechecks)
        name = run_plan(h, plan)
        h.outbox.deliver()
        text = h.sink.sent[0].payload["text"]
        assert "Pre-checks (validation gate" in text and "✅ denver — " in text
        # The same clusters give the same digest; a changed territory plan another.
        assert h.services.plan("global", "10.1.0.1", "full-outage").digest == plan.digest
        client = h.worker.clients("dallas")
        west = next(t for t in client.territories() if t.territory_id == "t-west")
        client.update_territory(replace(west, backup="dallas"))
        h.clock.advance(60)
        assert h.services.plan("global", "10.1.0.1", "full-outage").digest != plan.digest
        assert name == "R1"


@pytest.mark.parametrize(("fault", "words"), [
    ("denver=server-down", "servers up on denver failed: 1 of 2 up"),
    ("austin=alert", "alerts on austin failed: active alerts: austin: MAJOR"),
])
def test_a_down_server_or_an_alert_at_the_start_stops_it_with_the_reason(
        sqlite_url: str, fault: str, words: str) -> None:
    with harness(sqlite_url) as h:
        plan = h.services.plan("global", "10.1.0.1", "full-outage")
        h.sim.set_fault(*parse_fault(fault))
        before = len(h.sim.requests)
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        notice = stopped_notice(h)
        assert words in notice, notice
        assert "what to do:" in notice
        assert h.mutations_after(before) == []
        # Once fixed, a retry starts the run: the facts are back to what was approved.
        h.sim.clear_faults()
        h.services.control(name, "retry", "U0OPERATOR")
        assert h.drive(name, stop={"completed", "failed", "escalated", "paused"}) == "completed"


def test_a_changed_territory_plan_is_drift_and_needs_a_new_approval(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        plan = h.services.plan("global", "10.1.0.1", "full-outage")
        client = h.worker.clients("dallas")
        west = next(t for t in client.territories() if t.territory_id == "t-west")
        client.update_territory(replace(west, backup="dallas"))
        h.clock.advance(60)
        before = len(h.sim.requests)
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        notice = stopped_notice(h)
        assert "on global, territory plan: was" in notice
        assert "t-west denver/dallas" in notice
        assert "a new approval is needed" in notice
        assert h.mutations_after(before) == []
