"""List scheduling of a plan's step graph: how long it takes when independent steps overlap."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

from bot.engine.plans import PlanTiming, StepKind, StepSpec
from bot.engine.slots import step_limits


def parallel_limits(timing: PlanTiming) -> dict[StepKind, int]:
    """Return the per-kind concurrency limits that a timing implies."""
    return step_limits(timing.max_parallel_installs)


Timeline = dict[str, tuple[float, float]]


def schedule_estimate(steps: Sequence[StepSpec], durations: Mapping[str, float] | None = None,
                      *, max_parallel: Mapping[StepKind, int]) -> tuple[float, Timeline]:
    """Simulate the steps (deps and per-kind limits); return the total and each (start, end)."""
    _check_graph(steps, max_parallel)
    length = {s.key: float((durations or {}).get(s.key, s.estimate_s)) for s in steps}
    bad = sorted(key for key, seconds in length.items()
                 if not math.isfinite(seconds) or seconds < 0)
    if bad:  # a NaN would never end: `end <= now` is never true for it
        raise ValueError(f"steps {', '.join(bad)} have no finite duration of zero or more")
    waiting = list(steps)  # list order is the priority among ready steps
    running: dict[str, float] = {}  # key -> end offset
    kinds = {s.key: s.kind for s in steps}
    times: Timeline = {}
    done: set[str] = set()
    now = 0.0
    # Each round starts or ends at least one step; more rounds than that means a bug, not a plan.
    for _ in range(2 * len(steps) + 1):
        if not (waiting or running):
            break
        busy = Counter(kinds[key] for key in running)
        for spec in list(waiting):
            limit = max_parallel.get(spec.kind)
            if all(d in done for d in spec.deps) and (limit is None or busy[spec.kind] < limit):
                waiting.remove(spec)
                running[spec.key] = now + length[spec.key]
                times[spec.key] = (now, running[spec.key])
                busy[spec.kind] += 1
        now = min(running.values())
        for key in [k for k, end in running.items() if end <= now]:
            del running[key]
            done.add(key)
    else:
        raise RuntimeError("schedule_estimate did not converge")  # bounded: never spins
    return (max((end for _, end in times.values()), default=0.0), times)


def _check_graph(steps: Sequence[StepSpec], max_parallel: Mapping[StepKind, int]) -> None:
    """Refuse duplicate keys, unknown deps, cycles and limits below one."""
    seen: set[str] = set()
    known = {s.key for s in steps}
    for spec in steps:
        if spec.key in seen:
            raise ValueError(f"step {spec.key} appears twice")
        missing = [d for d in spec.deps if d not in known]
        if missing:
            raise ValueError(f"step {spec.key} depends on unknown steps {', '.join(missing)}")
        seen.add(spec.key)
    if cycle := _find_cycle(steps):
        raise ValueError(f"steps depend on each other in a cycle: {' -> '.join(cycle)}")
    for kind, limit in max_parallel.items():
        if limit < 1:
            raise ValueError(f"at least one {kind} step must be allowed to run, got {limit}")


def _find_cycle(steps: Sequence[StepSpec]) -> list[str]:
    deps = {s.key: s.deps for s in steps}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished

    def visit(key: str, path: list[str]) -> list[str]:
        state[key] = 1
        for dep in deps[key]:
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep] if dep in path else [key, dep]
            if dep not in state and (found := visit(dep, [*path, dep])):
                return found
        state[key] = 2
        return []

    for spec in steps:
        if spec.key not in state and (found := visit(spec.key, [spec.key])):
            return found
    return []
