"""Verification after an install: the vendor's three conditions, and the bot's extra checks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.dma.models import (
    HaStatus,
    InstalledSoftware,
    Member,
    Node,
    OperationStatus,
    SuperclusterView,
    Territory,
    UpgradeRecord,
)
from bot.engine.verification import (
    CONDITION_TEXT,
    VENDOR_CONDITIONS,
    Condition,
    Verdict,
    login_deadline,
    login_failure,
    login_verdict,
    verify_cluster,
    verify_join,
    verify_supercluster,
)

TARGET = "10.1.0.1"
APPLIED = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def row(server: int, to: str = TARGET, status: str = "UPGRADE_SUCCESSFUL",
        minute: int = 40) -> UpgradeRecord:
    return UpgradeRecord(server=server, from_version="10.0.0.3", to_version=to,
                         user_name="admin", status=status,
                         date=APPLIED + timedelta(minutes=minute))


OLD_ROWS = (UpgradeRecord(1, "9.0.1.2", "10.0.0.3", "admin", "UPGRADE_SUCCESSFUL",
                          datetime(2026, 3, 1, 22, 14, tzinfo=UTC)),
            UpgradeRecord(2, "9.0.1.2", "10.0.0.3", "admin", "UPGRADE_SUCCESSFUL",
                          datetime(2026, 3, 1, 22, 15, tzinfo=UTC)))
UPGRADED = InstalledSoftware(system_version=TARGET, rollback_version="10.0.0.3",
                             history=(*OLD_ROWS, row(1), row(2)))
BOTH_UP = HaStatus(ha_active=True, ha_connected=True, our_id=1, nodes=(
    Node(1, "dallas-a", "UP", TARGET), Node(2, "dallas-b", "UP", TARGET)))


def node(index: int, **changes: object) -> HaStatus:
    nodes = list(BOTH_UP.nodes)
    nodes[index] = replace(nodes[index], **changes)  # type: ignore[arg-type]
    return replace(BOTH_UP, nodes=tuple(nodes))


def verify(ha: HaStatus = BOTH_UP, installed: InstalledSoftware = UPGRADED,
           servers: int = 2) -> Verdict:
    return verify_cluster(expected_servers=servers, target_version=TARGET, installed=installed,
                          ha=ha)


def test_the_vendor_conditions_are_the_guides_three_in_its_words() -> None:
    vendors_three = {Condition.CANNOT_LOG_IN, Condition.ONE_SERVER, Condition.VERSION_MISMATCH}
    assert vendors_three == VENDOR_CONDITIONS
    assert CONDITION_TEXT[Condition.CANNOT_LOG_IN] == (
        "After waiting significantly longer than the estimated install time, you still cannot "
        "log back in.")
    assert CONDITION_TEXT[Condition.ONE_SERVER] == (
        "You can log in, but the Dashboard shows only one server for a two-server cluster.")
    assert CONDITION_TEXT[Condition.VERSION_MISMATCH] == (
        "The package version numbers on the two servers are not the same.")
    assert set(CONDITION_TEXT) == set(Condition)


def test_a_healthy_upgraded_cluster_passes_every_check() -> None:
    verdict = verify()
    assert verdict.ok and verdict.condition is None
    assert [c.name for c in verdict.checks] == ["servers up", "same package version",
                                                "on the target", "history agrees",
                                                "private link", "operation history"]
    assert all(c.ok for c in verdict.checks)
    assert [(s.host_name, s.package_version, s.history_status) for s in verdict.servers] == [
        ("dallas-a", TARGET, "UPGRADE_SUCCESSFUL"), ("dallas-b", TARGET, "UPGRADE_SUCCESSFUL")]
    assert verdict.summary.startswith("All checks passed on 10.1.0.1")


def test_only_one_server_back_on_a_two_server_cluster() -> None:
    verdict = verify(node(1, state="DOWN", package_version=None))
    assert verdict.condition is Condition.ONE_SERVER
    assert "1 of 2 servers up (dallas-a UP, dallas-b DOWN)" in verdict.checks[0].detail
    assert verdict.summary.startswith(CONDITION_TEXT[Condition.ONE_SERVER])
    # A server missing from the Dashboard altogether counts the same.
    assert verify(replace(BOTH_UP, nodes=BOTH_UP.nodes[:1])).condition is Condition.ONE_SERVER


def test_the_only_server_of_a_one_server_cluster_is_not_up() -> None:
    single = HaStatus(False, False, 1, (Node(1, "lab", "STARTING", TARGET),))
    installed = replace(UPGRADED, history=(row(1),))
    assert verify(single, installed, servers=1).condition is Condition.SERVER_DOWN
    up = replace(single, nodes=(Node(1, "lab", "UP", TARGET),))
    verdict = verify(up, installed, servers=1)
    assert verdict.ok  # and no private link is expected of it
    assert verdict.checks[4].detail == "one-server cluster: no private link"


def test_the_two_servers_on_different_package_versions() -> None:
    verdict = verify(node(1, package_version="10.0.0.3"))
    assert verdict.condition is Condition.VERSION_MISMATCH
    assert "package versions differ: dallas-a 10.1.0.1, dallas-b 10.0.0.3" in \
        verdict.checks[1].detail


def test_both_servers_still_on_the_old_version_is_an_install_that_did_not_take() -> None:
    still_old = replace(BOTH_UP, nodes=tuple(replace(n, package_version="10.0.0.3")
                                             for n in BOTH_UP.nodes))
    verdict = verify(still_old, replace(UPGRADED, system_version="10.0.0.3"))
    # Its own verdict, not "the two servers' versions differ" (they do not), and not a vendor's.
    assert verdict.condition is Condition.INSTALL_NOT_TAKEN
    assert verdict.condition not in VENDOR_CONDITIONS
    assert verdict.summary.startswith("The install did not take")
    assert verdict.checks[1].ok
    assert "not on the target 10.1.0.1" in verdict.checks[2].detail
    # The system version alone disagreeing is caught too.
    assert verify(installed=replace(UPGRADED, system_version="10.0.0.3")).condition is \
        Condition.VERSION_MISMATCH


def test_versions_compare_by_value_not_by_spelling() -> None:
    assert verify(node(0, package_version="v10.1.0.1")).ok
    assert verify(installed=replace(UPGRADED, system_version="V10.1.0.1")).ok
    assert not verify(node(0, package_version="10.1.0.1J")).ok  # a build variant differs


def test_the_private_link_between_the_servers_is_down() -> None:
    verdict = verify(replace(BOTH_UP, ha_connected=False))
    assert verdict.condition is Condition.PRIVATE_LINK
    assert verdict.checks[4].detail == "private link between the servers down"


def test_the_operation_history_does_not_show_a_successful_upgrade() -> None:
    failed = replace(UPGRADED, history=(*OLD_ROWS, row(1), row(2, status="UPGRADE_FAILURE")))
    verdict = verify(installed=failed)
    assert verdict.condition is Condition.OPERATION_HISTORY
    assert "dallas-b: UPGRADE_FAILURE to 10.1.0.1" in verdict.checks[5].detail
    # No new row at all for a server: the newest one is the previous upgrade.
    verdict = verify(installed=replace(UPGRADED, history=(*OLD_ROWS, row(1))))
    assert verdict.condition is Condition.OPERATION_HISTORY
    assert "dallas-b: history says 10.0.0.3, server runs 10.1.0.1" in verdict.checks[3].detail


def test_the_worst_condition_is_the_one_reported() -> None:
    # One server down AND the link down AND history missing: the Dashboard problem comes first.
    everything_wrong = replace(node(1, state="DOWN"), ha_connected=False)
    verdict = verify(everything_wrong, replace(UPGRADED, history=OLD_ROWS))
    assert verdict.condition is Condition.ONE_SERVER
    assert {c.name for c in verdict.checks if not c.ok} >= {"servers up", "private link",
                                                            "operation history"}
    # Versions differ and the link is down: the version mismatch comes first.
    assert verify(replace(node(1, package_version="10.0.0.3"),
                          ha_connected=False)).condition is Condition.VERSION_MISMATCH


def test_servers_that_do_not_report_a_package_version_fall_back_to_the_system_version() -> None:
    quiet = replace(BOTH_UP, nodes=tuple(replace(n, package_version=None) for n in BOTH_UP.nodes))
    assert verify(quiet).ok
    # No server version to compare and the system version is the old one: not taken.
    assert verify(quiet, replace(UPGRADED, system_version="10.0.0.3")).condition is \
        Condition.INSTALL_NOT_TAKEN


def test_waiting_to_log_back_in() -> None:
    estimate, grace, factor = 35 * 60.0, 300.0, 2.0
    deadline = login_deadline(APPLIED, estimate, grace, factor)
    assert deadline == APPLIED + timedelta(minutes=80)

    def at(minutes: float, logged_in: bool = False) -> str:
        return login_verdict(now=APPLIED + timedelta(minutes=minutes), applied_at=APPLIED,
                             estimate_s=estimate, login_grace_s=grace, factor=factor,
                             logged_in=logged_in)

    assert at(10) == "wait"
    assert at(79.9) == "wait"
    assert at(80) == "escalate"
    assert at(200, logged_in=True) == "ok"
    verdict = login_failure(now=APPLIED + timedelta(minutes=80), applied_at=APPLIED,
                            estimate_s=estimate)
    assert verdict.condition is Condition.CANNOT_LOG_IN and not verdict.ok
    assert "waited 80 min for an install estimated at 35 min" in verdict.summary


# The re-formed supercluster.

EXPECTED = {"dallas": 2, "denver": 2, "austin": 1}


def member(name: str, **changes: str) -> Member:
    fields = {"status": "SUPERCLUSTERED", "service_status": "IN_SERVICE", "version": TARGET,
              **changes}
    return Member(cluster_id=name, host_name=f"dma-{name}.example.com", **fields)


VIEW = SuperclusterView(clusters=(member("dallas"), member("denver"), member("austin")))
HA = {"dallas": BOTH_UP, "denver": BOTH_UP,
      "austin": HaStatus(False, False, 1, (Node(1, "austin", "UP", TARGET),))}
HOME = (Territory("t-americas", "Americas", "dallas", "denver", active="dallas"),
        Territory("t-texas", "Texas", "austin", "dallas", active="austin"),
        Territory("t-spare", "Spare", None, None))


def final_check(view: SuperclusterView = VIEW, territories: tuple[Territory, ...] = HOME,
                ha: dict[str, HaStatus] = HA) -> Verdict:
    return verify_supercluster(expected=EXPECTED, target_version=TARGET, view=view,
                               territories=territories, ha=ha)


def test_a_healthy_supercluster_passes_the_final_check() -> None:
    verdict = final_check()
    assert verdict.ok, verdict.summary
    assert verdict.summary == ("3 clusters superclustered and in service on 10.1.0.1; every "
                               "territory on its primary")


@pytest.mark.parametrize(("case", "changes", "detail"), [
    ("a cluster missing", {"view": replace(VIEW, clusters=VIEW.clusters[:2])}, "missing austin"),
    ("a stranger", {"view": replace(VIEW, clusters=(*VIEW.clusters, member("paris")))},
     "unexpected paris"),
    ("stand-alone", {"view": replace(VIEW, clusters=(member("dallas", status="STANDALONE"),
                                                     *VIEW.clusters[1:]))},
     "dallas is STANDALONE"),
    ("busied out", {"view": replace(VIEW, clusters=(
        *VIEW.clusters[:2], member("austin", service_status="BUSIED_OUT")))},
     "austin is BUSIED_OUT"),
    ("warnings", {"view": replace(VIEW, warnings=("replication lag",))}, "replication lag"),
    ("old version", {"view": replace(VIEW, clusters=(*VIEW.clusters[:2],
                                                     member("austin", version="10.0.0.3")))},
     "austin runs 10.0.0.3"),
    ("a server down", {"ha": {**HA, "denver": node(1, state="DOWN")}}, "denver: 1 of 2 servers up"),
    ("no status", {"ha": {"dallas": BOTH_UP, "denver": BOTH_UP}}, "austin: no status of 1"),
    ("territory on its backup", {"territories": (replace(HOME[0], active="denver"), *HOME[1:])},
     "Americas is on denver, primary dallas"),
    ("territory unknown", {"territories": (replace(HOME[0], active=None), *HOME[1:])},
     "Americas is on no cluster"),
])
def test_the_final_check_fails_on(case: str, changes: dict[str, object], detail: str) -> None:
    verdict = final_check(**changes)  # type: ignore[arg-type]
    assert verdict.condition is Condition.SUPERCLUSTER_CHECK
    assert detail in " | ".join(c.detail for c in verdict.checks if not c.ok)
    assert verdict.summary.startswith(CONDITION_TEXT[Condition.SUPERCLUSTER_CHECK])


def test_a_join_is_checked_each_time() -> None:
    two = SuperclusterView(clusters=(member("dallas"), member("denver")))
    complete = OperationStatus("JOIN", 100, state="COMPLETE", message="joined")
    assert verify_join(cluster="denver", seed="dallas", members={"dallas", "denver"},
                       view=two, operation=complete).ok
    # The operation status and the supercluster's warnings count too, not only membership.
    assert not verify_join(cluster="denver", seed="dallas", members={"dallas", "denver"},
                           view=two).ok
    warned = SuperclusterView(clusters=two.clusters, warnings=("denver is not responding",))
    verdict = verify_join(cluster="denver", seed="dallas", members={"dallas", "denver"},
                          view=warned, operation=complete)
    assert not verdict.ok and "denver is not responding" in verdict.summary
    joining = SuperclusterView(clusters=(member("dallas"), member("denver", status="JOINING")))
    verdict = verify_join(cluster="denver", seed="dallas", members={"dallas"}, view=joining,
                          operation=complete)
    assert verdict.condition is Condition.JOIN_FAILED
    assert "denver is JOINING" in verdict.summary
    alone = SuperclusterView(clusters=(member("dallas"),))
    assert verify_join(cluster="denver", seed="dallas", members=(), view=alone).condition is \
        Condition.JOIN_FAILED
    failed = OperationStatus("JOIN", 40, state="FAILED", message="versions differ")
    verdict = verify_join(cluster="denver", seed="dallas", members=(), view=two,
                          operation=failed)
    assert not verdict.ok and "FAILED: versions differ" in verdict.summary
