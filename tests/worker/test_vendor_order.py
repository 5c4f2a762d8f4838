"""A bot that skips a vendor step is refused by the cluster: the tests prove the order of steps.

Each test takes the correct full-outage plan, removes the step the guide requires first, and
runs it. The simulator enforces the vendor's rules, so the run stops with the cluster's refusal.
"""

from __future__ import annotations

from dataclasses import replace

from bot.engine.planner import Plan
from tests.support.engine_harness import Harness, harness


def without(plan: Plan, *kinds: str) -> Plan:
    """The plan minus every step of the given kinds, with dependencies re-linked past them."""
    dropped = {s.key: s.deps for s in plan.steps if s.kind.value in kinds}

    def deps(keys: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for key in keys:
            out.extend(deps(dropped[key]) if key in dropped else (key,))
        return tuple(dict.fromkeys(out))

    steps = tuple(replace(s, deps=deps(s.deps)) for s in plan.steps if s.key not in dropped)
    return replace(plan, steps=steps)


def run_plan(h: Harness, plan: Plan) -> str:
    name = h.services.submit(plan, requester="U0REQUESTER", require_window=False)
    h.acknowledge(name)
    for user in ("U0APPROVER1", "U0APPROVER2"):
        h.services.approve(name, user)
    return name


def test_installing_an_incompatible_version_on_a_member_is_refused(database_url: str) -> None:
    with harness(database_url) as h:
        # Skip the removal from the supercluster: the installs would run on members.
        plan = without(h.services.plan("global", "10.1.0.1", "full-outage"), "remove")
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        failed = [s for s in h.steps(name).values() if s.status == "failed"]
        assert failed and failed[0].kind == "install"
        assert "409" in (failed[0].last_error or "")
        assert "supercluster" in (failed[0].last_error or "")
        # No cluster changed version, and the failure is in the thread.
        assert {h.sim.version_of(c) for c in ("dallas", "denver", "austin")} == {"10.0.0.3"}
        assert any("stopped at install:" in t for t in h.sink.texts())


def test_removing_a_cluster_that_is_still_primary_is_refused(database_url: str) -> None:
    with harness(database_url) as h:
        # Skip the territory reassignment: denver is still primary of t-west.
        plan = without(h.services.plan("global", "10.1.0.1", "full-outage"),
                       "reassign_territories")
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        failed = [s for s in h.steps(name).values() if s.status == "failed"]
        assert [s.key for s in failed] == ["remove:denver"]
        assert "409" in (failed[0].last_error or "")
        assert "territor" in (failed[0].last_error or "")
        assert h.applies("denver") == 0
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]


def test_removing_a_cluster_in_service_is_refused(database_url: str) -> None:
    with harness(database_url) as h:
        plan = without(h.services.plan("global", "10.1.0.1", "full-outage"),
                       "busy_out", "drain", "out_of_service")
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        failed = [s for s in h.steps(name).values() if s.status == "failed"]
        assert [s.key for s in failed] == ["remove:denver"]
        assert "IN_SERVICE" in (failed[0].last_error or "") or "service" in (
            failed[0].last_error or "")
