"""The basic procedure as the guide wants it: no install on a cluster in service or with calls up.

A stand-alone cluster (and one member of a supercluster, for a compatible patch) is read, busied
out, drained, taken out of service, installed, verified and returned to service; installing with
calls up happens only when the plan said `emergency`.
"""

from __future__ import annotations

import pytest

from bot.config import ChecklistSettings
from bot.engine.planner import PlanningError
from bot.services import Services
from storage import repo
from storage.db import unit_of_work
from tests.support.engine_harness import harness
from tests.worker.test_vendor_order import run_plan, without

pytestmark = pytest.mark.slow


def lab_calls(h, path: str) -> list[tuple[str, object]]:
    return [(r.method, r.body) for r in h.sim.requests if r.cluster == "lab" and r.path == path]


def test_standalone_cluster_is_drained_and_taken_out_of_service_before_the_install(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        # lab runs 2 calls (the fixture); the plan reads them and says so.
        plan = h.services.plan("lab", "10.1.0.1")
        assert [s.kind.value for s in plan.steps] == [
            "preflight", "upload", "busy_out", "drain", "out_of_service", "install",
            "wait_login", "verify", "licence_keys", "return_to_service"]
        name = h.plan(target="lab")
        assert h.drive(name) == "completed"
        log = [(r.method, r.path, r.body) for r in h.sim.requests if r.cluster == "lab"
               and r.method != "GET"]
        statuses = [b["serviceStatus"] for m, p, b in log if p.endswith("set-service-status")]
        assert statuses == ["BUSIED_OUT", "OUT_OF_SERVICE", "IN_SERVICE"]
        apply_at = [i for i, (_, p, _) in enumerate(log) if p.endswith("/apply")]
        out_at = [i for i, (_, p, b) in enumerate(log) if p.endswith("set-service-status")
                  and b["serviceStatus"] == "OUT_OF_SERVICE"]
        assert apply_at and out_at and out_at[0] < apply_at[0]
        # /status was read before the busy-out, and no install reached a cluster with calls up.
        assert lab_calls(h, "/status")
        assert h.sim.breaches == []
        assert h.sim.state()["clusters"]["lab"]["serviceStatus"] == "IN_SERVICE"


def test_calls_that_do_not_end_hold_the_install_until_an_operator_decides(
        sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["lab=slow-drain:600"]) as h:
        name = h.plan(target="lab")
        assert h.drive(name) == "paused"
        assert h.steps(name)["drain:lab"].status == "blocked"
        assert h.applies("lab") == 0
        assert any("calls still active on lab" in t for t in h.sink.texts())


def test_an_emergency_plan_installs_without_waiting_for_the_calls(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["lab=slow-drain:600"]) as h:
        plan = h.services.plan("lab", "10.1.0.1", emergency=True)
        name = run_plan(h, plan)
        h.outbox.deliver()
        posted = h.sink.sent[0].payload
        assert "*EMERGENCY" in posted["text"]
        assert "*EMERGENCY" in str(posted["blocks"])
        with unit_of_work(h.sessions) as session:
            run = repo.get_run(session=session, ref=name)
            assert run is not None
            actions = [a.action for a in repo.audit_trail(session=session, run_id=run.id)]
        assert "run.emergency" in actions
        assert h.drive(name) == "completed"
        assert h.steps(name)["drain:lab"].data.get("emergency_calls", 0) > 0


def test_an_install_is_refused_by_the_bot_on_a_cluster_in_service(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        # A plan that forgot the busy-out: the install step itself refuses, nothing is sent.
        plan = without(h.services.plan("lab", "10.1.0.1"), "busy_out", "drain",
                       "out_of_service")
        name = run_plan(h, plan)
        assert h.drive(name) == "failed"
        step = h.steps(name)["install:lab"]
        assert step.status == "failed"
        assert "IN_SERVICE with 2 active calls" in (step.last_error or "")
        assert h.applies("lab") == 0 and h.sim.breaches == []


def test_a_compatible_patch_of_one_member_is_basic_with_busy_out_and_drain(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        plan = h.services.plan("denver", "10.0.0.4")
        assert plan.strategy.value == "basic"
        assert "member of supercluster global" in " ".join(plan.reasons)
        name = h.plan(target="denver", version="10.0.0.4")
        assert h.drive(name) == "completed"
        assert h.sim.version_of("denver") == "10.0.0.4"
        assert h.sim.version_of("dallas") == "10.0.0.3"
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
        assert "check_territories:denver" in h.steps(name)
        assert h.sim.breaches == []


def test_an_incompatible_upgrade_of_one_member_is_refused_naming_its_supercluster(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        with pytest.raises(PlanningError) as caught:
            h.services.plan("dallas", "10.1.0.1")
        text = str(caught.value)
        assert "member of supercluster global" in text
        assert "/upgrade plan global 10.1.0.1" in text
        assert h.mutations_after(0) == []


def test_a_team_that_keeps_its_checklist_elsewhere_starts_without_acknowledging(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        settings = h.settings.model_copy(update={
            "checklist": ChecklistSettings(require_acknowledgement=False)})
        services = Services(settings=settings, sessions=h.sessions, clock=h.clock,
                            clients=h.worker.clients)
        name = services.submit(services.plan("lab", "10.1.0.1"), requester="U0REQUESTER")
        for user in ("U0APPROVER1", "U0APPROVER2"):
            services.approve(name, user)
        assert h.run(name).status == "running"
        assert h.run(name).plan["acknowledge"] == []


def test_with_the_default_an_unacknowledged_item_keeps_an_approved_run_waiting(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        name = h.services.submit(h.services.plan("lab", "10.1.0.1"), requester="U0REQUESTER")
        for item in ("release-notes", "backup"):  # the licence keys are not acknowledged
            h.services.acknowledge(name, item, "U0OPERATOR")
        for user in ("U0APPROVER1", "U0APPROVER2"):
            h.services.approve(name, user)
        for _ in range(5):
            h.worker.tick()
            h.clock.advance(600)
        assert h.run(name).status == "approved"
        assert h.mutations_after(0) == []
        h.services.acknowledge(name, "licence-keys", "U0OPERATOR")
        assert h.run(name).status == "running"
