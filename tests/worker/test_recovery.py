"""Recovery runs against the simulator: rollback of one cluster, restore of a served network."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from bot.dma.client import DmaClient
from bot.engine.recovery import RecoveryError
from bot.simulator.kinds import parse_fault
from bot.worker.runner import Worker
from tests.support.engine_harness import FIXTURES, Harness, harness

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


def one_install_at_a_time(tmp_path: Path) -> str:
    """The fixture, with one install at a time and a territory only dallas serves."""
    text = (FIXTURES / "supercluster.yml").read_text(encoding="utf-8")
    text = text.replace("  lease: 2m\n", "  lease: 2m\n  max_parallel_installs: 1\n")
    north = "      - {id: t-north, name: North, primary: dallas}\n"
    text = text.replace("      - {id: t-south,", north + "      - {id: t-south,")
    path = tmp_path / "one-at-a-time.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def serving(h: Harness, via: str) -> set[str]:
    view = h.services.clients(via).supercluster()
    return {m.cluster_id for m in view.clusters if m.service_status == "IN_SERVICE"}


def test_restore_after_an_abort_in_the_middle_of_a_full_outage(sqlite_url: str,
                                                               tmp_path: Path) -> None:
    with harness(sqlite_url, config=one_install_at_a_time(tmp_path),
                 faults=["dallas=one-server"]) as h:
        first = h.plan(strategy="full-outage")
        assert h.drive(first) == "escalated"
        h.services.control(first, "abort", OPERATOR)
        # One install at a time: denver upgraded, dallas (cluster A) failed verification,
        # austin never installed. Every cluster is out of service and stand-alone.
        assert [h.sim.version_of(c) for c in ("dallas", "denver", "austin")] == [
            "10.1.0.1", "10.1.0.1", "10.0.0.3"]
        h.outbox.deliver()
        abort = next(t for t in h.sink.texts() if "aborted by" in t)
        assert "Out of service: dallas, denver, austin" in abort
        assert "Stand-alone (not in a supercluster): dallas, denver, austin" in abort
        assert "no in-service manager: Americas, North, South, West" in abort
        assert "/upgrade restore" in abort and "/upgrade rollback" in abort

        name, plan = h.services.restore(first, requester=OPERATOR)
        reasons = " ".join(plan.reasons)
        assert "10.1 family (denver): denver (primary of most territories) seeds" in reasons
        assert "10.0 family (austin): austin (primary of most territories) seeds" in reasons
        assert f"dallas stays out of service: 1 of 2 servers up; `/upgrade rollback {first} " \
               "dallas`" in reasons
        assert "no cluster in service after this plan: North (primary dallas" in reasons
        assert recover(h, name) == "completed"

        # Two superclusters, one per version family; every healthy cluster in service.
        assert serving(h, "denver") == {"denver"} and serving(h, "austin") == {"austin"}
        assert territories(h, "denver")["t-americas"] == ("denver", None)
        assert territories(h, "denver")["t-west"] == ("denver", None)
        assert territories(h, "austin")["t-south"] == ("austin", None)
        assert territories(h, "austin")["t-west"] == (None, None)
        assert h.sim.count("POST", "/installed-software/upgrade-package/apply", "austin") == 0


def test_restore_after_an_incremental_run_escalated(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=one-server"]) as h:
        first = h.plan(strategy="incremental")
        assert h.drive(first) == "escalated"
        text = next(t for t in h.sink.texts() if "escalation on" in t)
        assert "Out of service: denver" in text and "/upgrade restore" in text

        name, plan = h.services.restore(first, requester=OPERATOR)
        assert recover(h, name) == "completed"
        # The incremental order is by load: denver left first (and escalated), so dallas and
        # austin are still one supercluster on 10.0, serving every territory.
        assert serving(h, "dallas") == {"dallas", "austin"}
        assert territories(h, "dallas")["t-americas"] == ("dallas", None)
        assert territories(h, "dallas")["t-west"] == ("austin", None)
        assert h.sim.version_of("denver") == "10.1.0.1"  # stays out, offered a rollback
        assert f"/upgrade rollback {first} denver" in " ".join(plan.reasons)


def two_server_lab(tmp_path: Path) -> str:
    """The fixture, with the stand-alone lab cluster on two servers."""
    text = (FIXTURES / "supercluster.yml").read_text(encoding="utf-8")
    text = text.replace('/api/rest", servers: 1}', '/api/rest", servers: 2}')
    path = tmp_path / "two-server-lab.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("fault", "condition", "words"), [
    ("never-returns", "cannot-log-in", "still cannot log back in"),
    ("rollback-one-server", "one-server", "only one server"),
    ("rollback-version-mismatch", "version-mismatch", "not the same"),
])
def test_the_vendor_conditions_escalate_a_rollback(sqlite_url: str, tmp_path: Path, fault: str,
                                                    condition: str, words: str) -> None:
    with harness(sqlite_url, config=two_server_lab(tmp_path)) as h:
        first = h.plan(target="lab")
        assert h.drive(first) == "completed"
        h.sim.set_fault("lab", parse_fault(f"lab={fault}")[1])
        name, _ = h.services.rollback(first, "lab", requester=OPERATOR)
        assert recover(h, name) == "escalated"
        assert h.escalations(name) == [("lab", condition)]
        text = next(t for t in h.sink.texts() if f"{name} — escalation on" in t)
        assert words in text and "Polycom Global Services" in text
        # What was already done (the packet lists the run's steps on lab), and when.
        assert "Roll lab back to 10.0.0.3" in text and "rollback sent 20" in text
        assert f"/upgrade restore {name}" in text
        # Verification ran against the rollback version, not the upgrade's target.
        if condition != "cannot-log-in":
            report = next(t for t in h.sink.texts() if f"{name} — lab failed verification" in t)
            assert "target 10.0.0.3" in report
        assert h.sim.count("POST", "/installed-software/rollback", "lab") == 1


class Crash(BaseException):
    """A worker that dies right after a request went out (nothing after it runs)."""


class CrashAfterRollback:
    """A client that sends the rollback for real, then takes its worker down with it."""

    def __init__(self, client: DmaClient) -> None:
        self._client = client

    def rollback(self) -> Any:
        self._client.rollback()
        raise Crash

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_worker_dying_right_after_the_rollback_request_is_taken_over_without_a_second(
        database_url: str) -> None:
    with harness(database_url) as h:
        first = h.plan(target="lab")
        assert h.drive(first) == "completed"
        name, _ = h.services.rollback(first, "lab", requester=OPERATOR)
        h.services.approve(name, "U0APPROVER1")
        dying = Worker(session_factory=h.sessions, settings=h.settings, clock=h.clock,
                       # It stands in for a DmaClient: every other call goes to the real one.
                       clients=lambda c: cast(DmaClient,
                                              CrashAfterRollback(h.services.clients(c))),
                       worker_id="dying")
        with pytest.raises(Crash):
            for _ in range(50):
                dying.tick()
                h.clock.advance(30)
        assert h.sim.count("POST", "/installed-software/rollback", "lab") == 1
        # Its lease runs out; the test harness's worker takes the step over and reads the
        # cluster (restarting, then on 10.0.0.3) instead of sending the rollback again.
        assert h.steps(name)["rollback:lab"].claimed_by == "dying"
        h.clock.advance(h.settings.timing.lease.total_seconds() + 1)
        assert h.drive(name) == "completed"
        assert h.sim.count("POST", "/installed-software/rollback", "lab") == 1
        assert h.sim.version_of("lab") == "10.0.0.3"
