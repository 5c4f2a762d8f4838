"""Which strategy a plan gets, why, and every plan the bot refuses to make."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.engine.planner import PlanningError, Strategy, choose_strategy, make_plan
from tests.engine.builders import (
    MINOR,
    OLD,
    PATCH,
    TERRITORIES,
    lab,
    supercluster,
    with_versions,
)


def test_a_stand_alone_cluster_gets_the_basic_upgrade() -> None:
    strategy, reasons = choose_strategy(lab())
    assert strategy is Strategy.BASIC
    assert "lab is a stand-alone cluster" in reasons[0]


@pytest.mark.parametrize("asked", [Strategy.FULL_OUTAGE, Strategy.INCREMENTAL])
def test_supercluster_strategies_are_refused_for_a_stand_alone_cluster(asked: Strategy) -> None:
    with pytest.raises(PlanningError, match=f"strategy={asked.value} applies to a supercluster; "
                                            "lab is a stand-alone cluster, so use strategy=basic"):
        choose_strategy(lab(strategy=asked))


def test_a_patch_upgrade_of_a_supercluster_rolls_cluster_by_cluster() -> None:
    strategy, reasons = choose_strategy(supercluster(PATCH))
    assert strategy is Strategy.BASIC
    assert "compatible with every cluster of global (same 10.0)" in reasons[0]
    assert "one cluster at a time while the others stay in service" in reasons[0]


def test_an_incompatible_upgrade_gets_a_full_outage_that_needs_a_window() -> None:
    strategy, reasons = choose_strategy(supercluster(MINOR))
    assert strategy is Strategy.FULL_OUTAGE
    assert "not compatible with dallas (10.0.0.3)" in reasons[0]
    assert "cannot be upgraded to an incompatible version while it is a member" in reasons[0]
    assert make_plan(supercluster(MINOR)).needs_window
    assert not make_plan(supercluster(PATCH)).needs_window


def test_incremental_is_used_only_when_asked_for() -> None:
    strategy, reasons = choose_strategy(supercluster(MINOR, Strategy.INCREMENTAL))
    assert strategy is Strategy.INCREMENTAL
    assert any("five or more times as long" in r for r in reasons)
    assert choose_strategy(supercluster(MINOR))[0] is not Strategy.INCREMENTAL


def test_a_full_outage_may_be_asked_for_even_when_basic_would_do() -> None:
    strategy, reasons = choose_strategy(supercluster(PATCH, Strategy.FULL_OUTAGE))
    assert strategy is Strategy.FULL_OUTAGE
    assert any("basic would keep global in service" in r for r in reasons)


def test_basic_for_an_incompatible_supercluster_explains_the_vendor_rule() -> None:
    with pytest.raises(PlanningError) as caught:
        choose_strategy(supercluster(MINOR, Strategy.BASIC))
    message = str(caught.value)
    assert "cannot be upgraded to an incompatible version while it is a member of a " \
           "supercluster" in message
    assert "strategy=full-outage" in message and "strategy=incremental" in message


def test_the_superclusters_compatibility_answer_wins_over_the_numbers() -> None:
    # Same major.minor, but the supercluster says no: treat as incompatible.
    strategy, reasons = choose_strategy(supercluster(PATCH, compatible_override=False))
    assert strategy is Strategy.FULL_OUTAGE
    assert "compatibility check says 10.0.0.4 is not compatible" in reasons[0]
    # Different minor, but the supercluster says yes: a rolling basic upgrade.
    strategy, reasons = choose_strategy(supercluster(MINOR, compatible_override=True))
    assert strategy is Strategy.BASIC
    assert "compatible with every cluster of global: basic upgrade" in reasons[1]


def test_a_downgrade_is_refused_as_a_rollback() -> None:
    with pytest.raises(PlanningError, match=r"older than denver \(10\.1\.0\.1\).*rolling back is a "
                                            r"separate procedure"):
        choose_strategy(supercluster("10.0.0.9", clusters=with_versions(OLD, MINOR, OLD)))
    with pytest.raises(PlanningError, match="rolling back is a separate procedure"):
        choose_strategy(lab("9.0.1.2"))


def test_nothing_to_do_when_every_cluster_is_already_on_the_target() -> None:
    with pytest.raises(PlanningError, match=r"global is already on 10\.1\.0\.1:"):
        choose_strategy(supercluster(MINOR, clusters=with_versions(MINOR, MINOR, MINOR)))
    with pytest.raises(PlanningError, match=r"lab is already on 10\.1\.0\.1:"):
        choose_strategy(lab("v10.1.0.1", version="10.1.0.1"))  # equal once parsed


def test_clusters_already_on_a_patch_target_are_left_out() -> None:
    plan = make_plan(supercluster(PATCH, clusters=with_versions(PATCH, OLD, OLD)))
    assert plan.order == ("denver", "austin")
    assert not [s for s in plan.steps if s.cluster == "dallas"]
    assert "dallas is already on 10.0.0.4 and is left out." in plan.reasons


def test_territories_without_a_backup_are_called_out_for_a_rolling_upgrade() -> None:
    lonely = (*TERRITORIES[:2], replace(TERRITORIES[2], backup=None))
    _, reasons = choose_strategy(supercluster(PATCH, territories=lonely))
    assert "Territory Texas has no backup: it is not served while austin is busied out." in reasons


@pytest.mark.parametrize(("request_", "message"), [
    (supercluster("10.1"), r"'10.1' is not a DMA version: expected MAJOR.MINOR.PATCH"),
    (supercluster(clusters=with_versions(OLD, "garbage", OLD)),
     "denver reports a version that cannot be compared"),
    (supercluster(clusters=()), "global has no clusters"),
    (supercluster(clusters=with_versions(OLD, OLD, OLD)[:1] * 2), "lists a cluster twice"),
    (supercluster(MINOR, Strategy.INCREMENTAL, clusters=with_versions(OLD, OLD, OLD)[:1]),
     "incremental needs at least two clusters"),
    (lab(servers=3), "lab has 3 servers; a DMA cluster has one or two"),
    (lab(strategy="rolling"),  # type: ignore[arg-type]
     "unknown strategy 'rolling': expected auto, basic, full-outage, incremental"),
], ids=["bad target", "bad cluster version", "empty", "duplicate", "incremental alone", "servers",
        "strategy"])
def test_malformed_requests_are_refused_with_what_would_work(request_: object,
                                                             message: str) -> None:
    with pytest.raises(PlanningError, match=message):
        make_plan(request_)  # type: ignore[arg-type]
