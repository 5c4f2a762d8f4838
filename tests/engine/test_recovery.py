"""Recovery plans from cluster facts: rollback of one cluster, restore of a served network."""

from __future__ import annotations

import pytest

from bot.engine.impact import service_impact
from bot.engine.plans import PlanTiming, Strategy, TerritoryFacts
from bot.engine.recovery import ClusterNow, Recovered, RecoveryError, ScView
from bot.engine.recovery_plans import decode_assignments, plan_restore, plan_rollback

RECORD = (TerritoryFacts("t-americas", "Americas", "dallas", "denver", True),
          TerritoryFacts("t-west", "West", "denver", "austin"),
          TerritoryFacts("t-south", "South", "austin", "dallas"))
ALL = ("dallas", "denver", "austin")


def recovered(target_kind: str = "supercluster", before: str = "10.0.0.3") -> Recovered:
    return Recovered(name="R1", target="global", target_kind=target_kind, clusters=ALL,
                     cluster_a="dallas", from_versions=tuple((c, before) for c in ALL),
                     to_version="10.1.0.1", record=RECORD)


def now(name: str, version: str, *, members: tuple[str, ...] | None = None, up: int = 2,
        rollback: str | None = None, service: str = "OUT_OF_SERVICE",
        reachable: bool = True) -> ClusterNow:
    return ClusterNow(name=name, servers=2, reachable=reachable, version=version,
                      rollback_version=rollback, servers_up=up, members=members or (name,),
                      service=service)


def kinds(plan) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    return [(s.kind.value, s.cluster) for s in plan.steps]


def test_rollback_of_a_stand_alone_cluster_after_a_full_outage_stays_alone() -> None:
    facts = [now("dallas", "10.1.0.1", rollback="10.0.0.3"),
             now("denver", "10.1.0.1", up=1, rollback="10.0.0.3"),
             now("austin", "10.1.0.1", rollback="10.0.0.3")]
    plan = plan_rollback(recovered(), "denver", facts, (), PlanTiming())
    assert plan.strategy is Strategy.ROLLBACK and plan.to_version == "10.0.0.3"
    assert kinds(plan) == [("recovery_check", None), ("out_of_service", "denver"),
                           ("rollback", "denver"), ("wait_login", "denver"),
                           ("verify", "denver"), ("return_to_service", "denver")]
    assert plan.seed is None and "stays stand-alone" in " ".join(plan.reasons)
    assert plan.total_estimate_s > 0


def test_rollback_of_a_member_leaves_first_then_joins_the_other_and_gets_territories_back(
) -> None:
    members = ("dallas", "denver", "austin")
    facts = [now("dallas", "10.0.1.4", members=members, rollback="10.0.0.3",
                 service="IN_SERVICE"),
             now("denver", "10.0.1.4", members=members, up=1, rollback="10.0.0.3",
                 service="BUSIED_OUT"),
             now("austin", "10.0.1.4", members=members, rollback="10.0.0.3",
                 service="IN_SERVICE")]
    plan = plan_rollback(recovered(), "denver", facts, (), PlanTiming())
    assert kinds(plan) == [
        ("recovery_check", None), ("reassign_territories", "denver"), ("busy_out", "denver"),
        ("drain", "denver"), ("out_of_service", "denver"), ("remove", "denver"),
        ("rollback", "denver"), ("wait_login", "denver"), ("verify", "denver"),
        ("join", "denver"), ("assign_territories", "denver"), ("return_to_service", "denver"),
        ("check_territories", "denver")]
    join = plan.step("join:denver")
    assert join.param("seed") == "dallas" and join.param("version") == "10.0.0.3"
    back = decode_assignments(plan.step("assign_territories:denver").param("assign"))  # type: ignore[arg-type]
    assert back == {"t-americas": ("dallas", "denver"), "t-west": ("denver", "austin")}


def test_rollback_is_refused_without_a_rollback_version() -> None:
    facts = [now(c, "10.0.0.3") for c in ALL]
    with pytest.raises(RecoveryError, match=r"no rollback version.*only the last applied"):
        plan_rollback(recovered(), "denver", facts, (), PlanTiming())
    with pytest.raises(RecoveryError, match="not a cluster of R1"):
        plan_rollback(recovered(), "lab", facts, (), PlanTiming())


def test_restore_after_an_abort_mid_full_outage_forms_two_families() -> None:
    # dallas and austin upgraded; denver failed verification; nothing joined yet.
    facts = [now("dallas", "10.1.0.1", rollback="10.0.0.3"),
             now("denver", "10.1.0.1", up=1, rollback="10.0.0.3"),
             now("austin", "10.0.0.3")]
    plan = plan_restore(recovered(), facts, PlanTiming())
    text = " ".join(plan.reasons)
    assert "10.1 family (dallas): dallas (cluster A)" in text
    assert "10.0 family (austin): austin" in text
    assert "denver stays out of service: 1 of 2 servers up; `/upgrade rollback R1 denver`" in text
    assert "no cluster in service after this plan: none" in text
    assigned = decode_assignments(plan.step("assign_territories:dallas").param("assign"))  # type: ignore[arg-type]
    # West's primary denver stays out: its backup austin takes it, in austin's supercluster.
    assert assigned == {"t-americas": ("dallas", None), "t-west": (None, None),
                        "t-south": (None, None)}
    other = decode_assignments(plan.step("assign_territories:austin").param("assign"))  # type: ignore[arg-type]
    assert other == {"t-americas": (None, None), "t-west": ("austin", None),
                     "t-south": ("austin", None)}
    assert ("return_to_service", "denver") not in kinds(plan)


def test_restore_joins_stand_alone_clusters_to_cluster_a_and_names_gaps() -> None:
    facts = [now("dallas", "10.1.0.1"), now("denver", "10.1.0.1", reachable=False, up=0),
             now("austin", "10.1.0.1")]
    record = (*RECORD, TerritoryFacts("t-north", "North", "denver", None))
    rec = Recovered(**{**recovered().__dict__, "record": record})
    plan = plan_restore(rec, facts, PlanTiming())
    assert plan.step("join:austin").param("seed") == "dallas"
    assert "North (primary denver, backup none)" in " ".join(plan.reasons)


def test_restore_with_no_healthy_cluster_is_refused() -> None:
    facts = [now(c, "10.1.0.1", up=1) for c in ALL]
    with pytest.raises(RecoveryError, match="no cluster of R1 is healthy"):
        plan_restore(recovered(), facts, PlanTiming())


def test_service_impact_names_out_of_service_stand_alone_and_unmanaged() -> None:
    facts = [now("dallas", "10.1.0.1", service="IN_SERVICE"), now("denver", "10.1.0.1"),
             now("austin", "10.0.0.3")]
    views = [ScView(("dallas",), RECORD), ScView(("austin",), RECORD)]
    impact = service_impact(facts, views)
    assert impact.out_of_service == (("denver", "out of service"), ("austin", "out of service"))
    assert impact.standalone == ALL
    assert impact.unmanaged == ("West",)  # South has its backup dallas in service
