"""How long plans take, the request digest, and stored plans."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.engine.planner import (
    ClusterFacts,
    PlanningError,
    StepKind,
    StepSpec,
    Strategy,
    make_plan,
    plan_from_json,
    plan_to_json,
    request_digest,
    schedule_estimate,
)
from bot.engine.plans import PlanTiming
from bot.engine.schedule import parallel_limits
from tests.engine.builders import (
    MINOR,
    PATCH,
    TERRITORIES,
    lab,
    supercluster,
    timing,
    with_versions,
)

MIN = 60.0
INSTALLS = 35 * MIN + 30 * MIN + 40 * MIN  # dallas, denver, austin


def step(key: str, seconds: float, *deps: str, kind: StepKind = StepKind.VERIFY) -> StepSpec:
    return StepSpec(key=key, kind=kind, cluster=None, deps=deps, estimate_s=seconds, title=key)


def test_list_scheduling_respects_deps_and_the_install_limit() -> None:
    steps = [step("a", 10), step("i1", 100, "a", kind=StepKind.INSTALL),
             step("i2", 50, "a", kind=StepKind.INSTALL), step("v", 5, "a"),
             step("z", 1, "i1", "i2", "v")]
    total, times = schedule_estimate(steps, max_parallel={StepKind.INSTALL: 1})
    assert times == {"a": (0, 10), "i1": (10, 110), "i2": (110, 160), "v": (10, 15),
                     "z": (160, 161)}
    assert total == 161
    total, times = schedule_estimate(steps, max_parallel={StepKind.INSTALL: 2})
    assert times["i2"] == (10, 60) and total == 111
    # Measured durations replace estimates.
    total, _ = schedule_estimate(steps, {"i1": 20.0}, max_parallel={StepKind.INSTALL: 2})
    assert total == 61


def test_list_scheduling_refuses_broken_graphs() -> None:
    with pytest.raises(ValueError, match="depends on unknown steps x"):
        schedule_estimate([step("a", 1, "x")], max_parallel={})
    with pytest.raises(ValueError, match="cycle"):
        schedule_estimate([step("a", 1, "b"), step("b", 1, "a")], max_parallel={})
    with pytest.raises(ValueError, match="at least one install"):
        schedule_estimate([step("a", 1)], max_parallel={StepKind.INSTALL: 0})
    assert schedule_estimate([], max_parallel={}) == (0.0, {})


def test_step_estimates_come_from_the_timing_and_the_clusters() -> None:
    plan = make_plan(supercluster(MINOR, timing=timing(install_estimate_s=3000)))
    assert plan.step("install:dallas").estimate_s == 35 * MIN  # the cluster's own estimate
    plan = make_plan(lab(estimated_install_minutes=None))
    assert plan.step("install:lab").estimate_s == 2400  # the default
    assert plan.step("upload:lab").estimate_s == 600
    uploaded = make_plan(lab(upgrade_version="10.1.0.1"))
    assert uploaded.step("upload:lab").estimate_s == 30  # only a check
    assert uploaded.step("upload:lab").title == \
        "Confirm that the 10.1.0.1 package is uploaded on lab"
    assert plan.cluster_estimates == (("lab", sum(s.estimate_s for s in plan.steps
                                                  if s.cluster == "lab")),)


def test_a_full_outage_lasts_about_the_longest_install_plus_the_joins() -> None:
    plan = make_plan(supercluster(MINOR))
    assert plan.outage_estimate_s is not None
    # The three installs (35, 30 and 40 min) overlap: far less than their sum...
    assert plan.outage_estimate_s < INSTALLS - 20 * MIN
    # ...and close to the longest one plus the two joins plus the drain: the outage is
    # measured from the first busy-out (no new call from then on), the rest is short steps.
    longest_plus_joins = 40 * MIN + 2 * 600 + 5 * MIN
    assert longest_plus_joins < plan.outage_estimate_s < longest_plus_joins + 20 * MIN
    assert plan.total_estimate_s > plan.outage_estimate_s  # uploads and the record come first
    # One install at a time: the outage holds the whole sum.
    serial = make_plan(supercluster(MINOR, timing=timing(max_parallel_installs=1)))
    assert serial.outage_estimate_s is not None
    assert serial.outage_estimate_s >= INSTALLS + 2 * 600
    assert serial.total_estimate_s - plan.total_estimate_s >= 30 * MIN


def test_the_outage_runs_from_the_first_busy_out_to_the_last_return() -> None:
    plan = make_plan(supercluster(MINOR))
    _, times = schedule_estimate(plan.steps, max_parallel=parallel_limits(PlanTiming()))
    # No new call is taken from the first busy-out on: that is where the outage starts.
    start = min(times[f"busy_out:{c}"][0] for c in plan.order)
    end = max(times[f"return_to_service:{c}"][1] for c in plan.order)
    assert plan.outage_estimate_s == end - start
    assert make_plan(supercluster(PATCH)).outage_estimate_s is None


def test_an_incremental_upgrade_takes_much_longer_than_a_full_outage() -> None:
    full = make_plan(supercluster(MINOR))
    incremental = make_plan(supercluster(MINOR, Strategy.INCREMENTAL))
    assert incremental.total_estimate_s > 2 * full.total_estimate_s
    # Nothing overlaps but the uploads.
    uploads = [s.estimate_s for s in incremental.steps if s.kind is StepKind.UPLOAD]
    everything = sum(s.estimate_s for s in incremental.steps)
    assert incremental.total_estimate_s == everything - sum(uploads) + max(uploads)


def test_a_rolling_upgrade_adds_up_cluster_by_cluster() -> None:
    plan = make_plan(supercluster(PATCH))
    assert dict(plan.cluster_estimates)["dallas"] == sum(
        s.estimate_s for s in plan.steps if s.cluster == "dallas")
    per_cluster = sum(e for _, e in plan.cluster_estimates)
    uploads = sum(s.estimate_s for s in plan.steps if s.kind is StepKind.UPLOAD)
    # Uploads overlap with each other; the per-cluster work is strictly one after another.
    assert plan.total_estimate_s == pytest.approx(
        per_cluster - uploads + 600 + plan.step("preflight").estimate_s
        + plan.step("final_check").estimate_s)


def test_the_digest_is_stable_and_follows_what_the_plan_was_computed_from() -> None:
    request = supercluster(MINOR)
    digest = request_digest(request)
    assert len(digest) == 64 and make_plan(request).digest == digest
    assert request_digest(supercluster(MINOR)) == digest
    # The order the DMA lists territories in, and how the version is typed, change nothing.
    assert request_digest(replace(request, territories=TERRITORIES[::-1])) == digest
    assert request_digest(replace(request, to_version=" v10.1.0.1")) == digest
    changed = [
        replace(request, clusters=with_versions("10.0.0.3", "10.0.0.3", "10.0.0.2")),
        replace(request, to_version="10.1.0.2"),
        replace(request, strategy=Strategy.INCREMENTAL),
        replace(request, clusters=(*request.clusters[:2],
                                   replace(request.clusters[2], upgrade_version=MINOR))),
        replace(request, clusters=(*request.clusters[:2],
                                   replace(request.clusters[2], servers=2))),
        replace(request, territories=TERRITORIES[:2]),
        replace(request, timing=timing(join_estimate_s=900)),
        replace(request, compatible_override=False),
        replace(request, clusters=request.clusters[:2]),
    ]
    assert len({request_digest(r) for r in changed} | {digest}) == len(changed) + 1


@pytest.mark.parametrize("request_", [lab(), supercluster(PATCH), supercluster(MINOR),
                                      supercluster(MINOR, Strategy.INCREMENTAL)],
                         ids=["stand-alone", "rolling", "full-outage", "incremental"])
def test_a_stored_plan_reads_back_exactly(request_: object) -> None:
    plan = make_plan(request_)  # type: ignore[arg-type]
    stored = json.loads(json.dumps(plan_to_json(plan)))
    assert stored["schema"] == 1 and stored["strategy"] == plan.strategy.value
    assert plan_from_json(stored) == plan


def test_a_stored_plan_of_another_schema_or_damaged_is_refused() -> None:
    stored = plan_to_json(make_plan(lab()))
    with pytest.raises(PlanningError, match="schema 2; this bot reads schema 1"):
        plan_from_json({**stored, "schema": 2})
    with pytest.raises(PlanningError, match=r"damaged.*make a new plan"):
        plan_from_json({**stored, "steps": [{"key": "x"}]})
    with pytest.raises(PlanningError, match="damaged"):
        plan_from_json({**stored, "strategy": "yolo"})


def test_a_one_cluster_supercluster_upgrades_without_removing_or_joining() -> None:
    single = (ClusterFacts("dallas", 2, "10.0.0.3"),)
    plan = make_plan(supercluster(MINOR, clusters=single))
    assert plan.strategy is Strategy.FULL_OUTAGE
    assert not [s for s in plan.steps if s.kind in (StepKind.REMOVE, StepKind.JOIN)]
    assert plan.step("install:dallas").deps == ("reassign_territories",)
