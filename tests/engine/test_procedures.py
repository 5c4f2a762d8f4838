"""The step graphs of each strategy, for the three-cluster supercluster `global`.

The deps, not the list order, make the order, so most assertions ask "must X finish before Y
starts?" through `before`, which follows deps transitively.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.engine.planner import (
    INCREMENTAL_FACTORS,
    PREFLIGHT_CHECKLIST,
    ClusterFacts,
    Plan,
    PlanningError,
    PlanTiming,
    StepKind,
    Strategy,
    make_plan,
    request_digest,
    schedule_estimate,
)
from bot.engine.schedule import parallel_limits
from tests.engine.builders import MINOR, PATCH, lab, supercluster

PER_CLUSTER_BASIC = ("busy_out", "drain", "install", "wait_login", "verify", "licence_keys",
                     "return_to_service", "check_territories")


def before(plan: Plan, first: str, then: str) -> bool:
    """Return True when `then` cannot start until `first` has finished."""
    deps = {s.key: s.deps for s in plan.steps}
    seen, todo = set(), list(deps[then])
    while todo:
        key = todo.pop()
        if key == first:
            return True
        if key not in seen:
            seen.add(key)
            todo.extend(deps[key])
    return False


def keys(plan: Plan, kind: StepKind) -> list[str]:
    return [s.key for s in plan.steps if s.kind is kind]


def test_a_stand_alone_cluster_is_drained_and_out_of_service_before_its_install() -> None:
    plan = make_plan(lab())
    keys = ("preflight", "upload:lab", "busy_out:lab", "drain:lab", "out_of_service:lab",
            "install:lab", "wait_login:lab", "verify:lab", "licence_keys:lab",
            "return_to_service:lab")
    assert plan.keys == keys
    # One chain: each step after the one before it.
    assert [s.deps for s in plan.steps] == [(), *((k,) for k in keys[:-1])]
    assert [s.key for s in plan.steps if s.safe_point] == ["busy_out:lab"]
    assert plan.step("install:lab").title == "Install 10.1.0.1 on lab (one server)"
    assert plan.step("install:lab").param("emergency") is None
    assert plan.seed is None and plan.factors == () and plan.checklist == PREFLIGHT_CHECKLIST


def test_an_emergency_plan_lets_the_install_and_the_drain_go_on_with_calls_up() -> None:
    plan = make_plan(replace(lab(), emergency=True))
    assert plan.emergency
    assert plan.step("install:lab").param("emergency") == "yes"
    assert plan.step("drain:lab").param("emergency") == "yes"
    assert any("EMERGENCY" in r for r in plan.reasons)


def test_a_rolling_patch_upgrade_does_one_cluster_at_a_time() -> None:
    plan = make_plan(supercluster(PATCH))
    assert plan.strategy is Strategy.BASIC and plan.order == ("dallas", "denver", "austin")
    assert plan.keys == (
        "preflight", "upload:dallas", "upload:denver", "upload:austin",
        *[f"{kind}:dallas" for kind in PER_CLUSTER_BASIC],
        *[f"{kind}:denver" for kind in PER_CLUSTER_BASIC],
        *[f"{kind}:austin" for kind in PER_CLUSTER_BASIC],
        "final_check")
    # Uploads overlap; nothing is busied out before every package is in place.
    for name in plan.order:
        assert plan.step(f"upload:{name}").deps == ("preflight",)
    assert set(plan.step("busy_out:dallas").deps) == set(keys(plan, StepKind.UPLOAD))
    # The next cluster starts only once the previous one's territories are back home.
    assert plan.step("busy_out:denver").deps == ("check_territories:dallas",)
    assert plan.step("busy_out:austin").deps == ("check_territories:denver",)
    assert plan.step("final_check").deps == ("check_territories:austin",)
    assert keys(plan, StepKind.BUSY_OUT) == [s.key for s in plan.steps if s.safe_point]
    assert plan.step("install:dallas").title == "Install 10.0.0.4 on dallas (both servers)"
    assert plan.step("check_territories:dallas").param("territories") == ("t-americas",)


def test_a_full_outage_takes_everything_down_and_rebuilds_around_the_seed() -> None:
    # Installs: dallas 35, denver 30, austin 40 min. The seed is the cluster ready first (the
    # shortest install: it installs only once every other cluster has left); the others leave
    # longest install first, so the longest install starts first.
    plan = make_plan(supercluster(MINOR))
    assert plan.strategy is Strategy.FULL_OUTAGE and plan.seed == "denver"
    assert plan.order == ("denver", "austin", "dallas")
    assert plan.keys == (
        "preflight", "upload:denver", "upload:austin", "upload:dallas", "record_territories",
        "busy_out:denver", "busy_out:austin", "busy_out:dallas",
        "drain:denver", "drain:austin", "drain:dallas",
        "out_of_service:denver", "out_of_service:austin", "out_of_service:dallas",
        "reassign_territories", "remove:austin", "remove:dallas",
        "install:denver", "wait_login:denver", "verify:denver", "licence_keys:denver",
        "install:austin", "wait_login:austin", "verify:austin", "licence_keys:austin",
        "install:dallas", "wait_login:dallas", "verify:dallas", "licence_keys:dallas",
        "join:austin", "join:dallas", "restore_territories",
        "return_to_service:denver", "return_to_service:austin", "return_to_service:dallas",
        "final_check")
    # The seed becomes primary of everything, with no backups, before anyone leaves.
    reassign = plan.step("reassign_territories")
    assert reassign.param("to") == "denver"
    assert all(before(plan, "reassign_territories", r) for r in keys(plan, StepKind.REMOVE))
    assert all(before(plan, o, "reassign_territories") for o in keys(plan, StepKind.OUT_OF_SERVICE))
    # The seed never leaves; the others leave one at a time, through the seed.
    assert "remove:denver" not in plan.keys
    assert plan.step("remove:dallas").deps == ("remove:austin",)
    assert {plan.step(r).param("via") for r in keys(plan, StepKind.REMOVE)} == {"denver"}
    # A cluster is installed only once it is stand-alone; the seed once all others have left.
    for name in ("dallas", "austin"):
        assert plan.step(f"install:{name}").deps == (f"remove:{name}",)
    assert all(before(plan, r, "install:denver") for r in keys(plan, StepKind.REMOVE))
    # The installs do not wait for each other: they can run side by side.
    assert not before(plan, "install:dallas", "install:austin")
    assert not before(plan, "install:austin", "install:denver")
    # Everyone joins the seed as soon as both are ready (one at a time: the join limit, not a
    # chain); nobody joins the seed to anything.
    assert "join:denver" not in plan.keys
    assert {plan.step(j).param("seed") for j in keys(plan, StepKind.JOIN)} == {"denver"}
    assert set(plan.step("join:austin").deps) == {"licence_keys:denver", "licence_keys:austin"}
    assert set(plan.step("join:dallas").deps) == {"licence_keys:denver", "licence_keys:dallas"}
    assert set(plan.step("restore_territories").deps) == {"join:austin", "join:dallas"}
    assert plan.step("restore_territories").param("via") == "denver"
    assert all(before(plan, "restore_territories", r)
               for r in keys(plan, StepKind.RETURN_TO_SERVICE))
    assert [s.key for s in plan.steps if s.safe_point] == [
        "busy_out:denver", "busy_out:austin", "busy_out:dallas", "join:austin", "join:dallas"]


def test_a_pinned_seed_is_kept_and_the_others_still_leave_longest_install_first() -> None:
    plan = make_plan(supercluster(MINOR, seed="dallas"))
    assert plan.seed == "dallas" and plan.order == ("dallas", "austin", "denver")
    assert plan.step("remove:denver").deps == ("remove:austin",)
    assert plan.step("reassign_territories").param("to") == "dallas"
    with pytest.raises(PlanningError, match="seed lab is not a cluster of global"):
        make_plan(supercluster(MINOR, seed="lab"))
    # Pinning changes the plan, so it changes the digest; no pin leaves earlier digests alone.
    assert request_digest(supercluster(MINOR, seed="dallas")) != request_digest(
        supercluster(MINOR))


def test_joins_wait_for_the_cluster_that_is_ready_not_for_the_order() -> None:
    clusters = tuple(ClusterFacts(n, 2, "10.0.0.3", m)
                     for n, m in (("dallas", 25), ("denver", 20), ("austin", 40)))
    plan = make_plan(supercluster(MINOR, clusters=clusters))
    assert plan.order == ("denver", "austin", "dallas")
    _, times = schedule_estimate(plan.steps, max_parallel=parallel_limits(PlanTiming()))
    # dallas (25 min) is ready long before austin (40 min, removed first): it joins first,
    # and the joins never overlap.
    assert times["join:dallas"][0] < times["join:austin"][0]
    assert times["join:dallas"][1] <= times["join:austin"][0]
    assert times["join:dallas"][0] >= times["licence_keys:dallas"][1]


def test_an_incremental_upgrade_moves_one_cluster_at_a_time_to_a_new_supercluster() -> None:
    plan = make_plan(supercluster(MINOR, Strategy.INCREMENTAL))
    # By load: no calls reported, so inventory order, but dallas hosts conference rooms: last.
    assert plan.order == ("denver", "austin", "dallas")
    assert plan.strategy is Strategy.INCREMENTAL and plan.seed == "denver"
    leaving = ("reassign_territories", "busy_out", "drain", "remove", "install", "wait_login",
               "verify", "licence_keys")
    assert plan.keys == (
        "preflight", "upload:denver", "upload:austin", "upload:dallas", "record_territories",
        # denver leaves first and seeds the new supercluster: it joins nothing.
        *[f"{k}:denver" for k in leaving], "return_to_service:denver",
        "move_territories:denver", "people_work:denver",
        *[f"{k}:austin" for k in leaving], "join:austin", "return_to_service:austin",
        "move_territories:austin", "people_work:austin",
        # dallas is last: everything it serves moves into the new supercluster before its
        # busy-out; alone in the old supercluster, it has nothing to leave.
        "move_territories:dallas", "busy_out:dallas", "drain:dallas", "install:dallas",
        "wait_login:dallas", "verify:dallas", "licence_keys:dallas", "join:dallas",
        "return_to_service:dallas", "restore_territories", "people_work:dallas", "final_check")
    # Strictly sequential after the record: each step waits for the one before it.
    start = plan.keys.index("record_territories")
    for previous, step in zip(plan.steps[start:], plan.steps[start + 1:], strict=False):
        assert step.deps == (previous.key,), step.key
    assert plan.step("reassign_territories:denver").param("stay") == ("austin", "dallas")
    assert plan.step("reassign_territories:austin").param("stay") == ("dallas",)
    assert plan.step("reassign_territories:austin").param("away_from") == "austin"
    assert {plan.step(r).param("via") for r in keys(plan, StepKind.REMOVE)} == {"dallas"}
    assert {plan.step(j).param("seed") for j in keys(plan, StepKind.JOIN)} == {"denver"}
    assert plan.step("move_territories:austin").param("new") == ("denver", "austin")
    assert plan.step("move_territories:austin").param("old") == ("dallas",)
    assert plan.step("move_territories:dallas").param("every") == "yes"
    assert [s.key for s in plan.steps if s.safe_point] == [
        "reassign_territories:denver", "reassign_territories:austin", "move_territories:dallas"]
    # One people's-work pause per cluster, each estimated at the configured allowance.
    assert [s.estimate_s for s in plan.steps if s.kind is StepKind.PEOPLE_WORK] == [5400.0] * 3
    assert plan.factors == INCREMENTAL_FACTORS and len(plan.factors) == 10
    assert not plan.needs_window


def test_the_incremental_order_follows_the_load_the_clusters_report() -> None:
    request = supercluster(MINOR, Strategy.INCREMENTAL)
    loaded = replace(request, clusters=tuple(
        replace(c, active_calls=calls, registrations=100)
        for c, calls in zip(request.clusters, (0, 9, 2), strict=True)))
    plan = make_plan(loaded)
    # austin (2 calls) before denver (9); dallas hosts conference rooms, so it leaves last
    # even with no calls.
    assert plan.order == ("austin", "denver", "dallas")
    assert any(r.startswith("Order by load") and "dallas (0 calls, 100 registrations, hosts "
               "conference rooms)" in r for r in plan.reasons)


def test_the_ten_factors_and_the_checklist_are_the_guides() -> None:
    assert INCREMENTAL_FACTORS[0] == "It can easily take five times as long as the simplified " \
                                     "method."
    assert "bandwidth limits exist in both superclusters" in INCREMENTAL_FACTORS[9]
    assert len(PREFLIGHT_CHECKLIST) == 5
    assert "release notes" in PREFLIGHT_CHECKLIST[0]
    assert "Only the last upgrade can be rolled back".lower() in PREFLIGHT_CHECKLIST[1].lower()
    assert "emergency" in PREFLIGHT_CHECKLIST[2] and "licence" in PREFLIGHT_CHECKLIST[3]
    assert "ahead of time" in PREFLIGHT_CHECKLIST[4]
    assert make_plan(supercluster(MINOR)).factors == ()
