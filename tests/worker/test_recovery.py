"""Recovery runs against the simulator: rollback of one cluster, restore of a served network."""

from __future__ import annotations

import pytest

from bot.engine.recovery import RecoveryError
from tests.support.engine_harness import Harness, harness

pytestmark = pytest.mark.slow  # whole runs in virtual time

OPERATOR = "U0OPERATOR"


def recover(h: Harness, name: str) -> str:
    """Approve a recovery run by one approver (recovery_approvals_required: 1), then drive it."""
    result = h.services.approve(name, "U0APPROVER1", source="cli")
    assert result.counted and result.required == 1
    return h.drive(name)


def territories(h: Harness, via: str) -> dict[str, tuple[str | None, str | None]]:
    return {t.territory_id: (t.primary, t.backup) for t in h.sim.territories_of(via)}


def test_rollback_of_a_stand_alone_cluster(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        first = h.plan(target="lab")
        assert h.drive(first) == "completed" and h.sim.version_of("lab") == "10.1.0.1"

        name, plan = h.services.rollback(first, "lab", requester=OPERATOR)
        assert plan.strategy.value == "rollback" and plan.to_version == "10.0.0.3"
        posted = h.sink.texts()
        h.outbox.deliver()
        head = h.sink.texts()[len(posted)]
        assert f"*{name}* — rollback plan for cluster *lab*" in head and f"recovers {first}" in head
        assert "Approvals: 0 of 1" in head
        # The requester's own approval does not count.
        assert not h.services.approve(name, OPERATOR, approvers=[OPERATOR]).counted

        assert recover(h, name) == "completed"
        assert h.sim.version_of("lab") == "10.0.0.3"
        assert h.sim.count("POST", "/installed-software/rollback", "lab") == 1
        assert h.run(name).recovers == h.run(first).id
        text = "\n".join(h.sink.texts())
        assert "lab verified" in text


def test_rollback_of_a_rejoined_cluster_leaves_rolls_back_joins_and_gets_territories_back(
        sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        first = h.plan(version="10.0.0.4")  # a patch: basic, cluster by cluster
        assert h.drive(first) == "completed"
        before = territories(h, "dallas")

        name, plan = h.services.rollback(first, "denver", requester=OPERATOR)
        assert [s.kind.value for s in plan.steps][:6] == [
            "recovery_check", "reassign_territories", "busy_out", "drain", "out_of_service",
            "remove"]
        assert plan.step("join:denver").param("seed") == "dallas"
        assert recover(h, name) == "completed"

        assert h.sim.version_of("denver") == "10.0.0.3"
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
        # The rolled-back cluster joined dallas (never the reverse): its own join request.
        assert h.sim.count("POST", "/dma-supercluster", "denver") == 1
        assert h.sim.count("POST", "/dma-supercluster", "dallas") == 0
        assert territories(h, "dallas") == before
        member = h.services.clients("dallas").supercluster().member("denver")
        assert member is not None and member.service_status == "IN_SERVICE"


def test_rollback_is_refused_without_a_rollback_version(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=one-server"]) as h:
        first = h.plan(version="10.0.0.4")
        assert h.drive(first) == "escalated"
        # austin was never upgraded: nothing to roll back on it.
        with pytest.raises(RecoveryError, match="austin reports no rollback version"):
            h.services.rollback(first, "austin", requester=OPERATOR)
        assert h.sim.count("POST", "/installed-software/rollback") == 0
