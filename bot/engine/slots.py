"""The install-slot rule: how many clusters of a run may be restarting at once (pure).

A cluster holds an install slot from its install request until it is verified: the request
takes a second, the restart it starts takes most of an hour, and a second install started in
between would restart two clusters where `max_parallel_installs` allows one. The claim of a
step asks this module, and nothing else decides it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.engine.plans import StepKind
from bot.engine.states import DONE_STEP, StepStatus


@dataclass(frozen=True)
class SlotView:
    """What the rule needs to know of one step of the run."""

    key: str
    kind: str
    cluster: str | None
    status: StepStatus
    claimed: bool  # a worker holds its lease now (claimed, perhaps not yet marked active)


def step_limits(max_parallel_installs: int) -> dict[StepKind, int]:
    """How many steps of each limited kind a run may have under way at once.

    Installs: the configured number. Joins: one, because a supercluster accepts one joining
    cluster at a time (the guide; the simulator answers 409 to a second).
    """
    return {StepKind.INSTALL: max_parallel_installs, StepKind.JOIN: 1}


def slots_held(steps: Iterable[SlotView]) -> Counter[str]:
    """How many slots the steps of each kind hold now."""
    steps = list(steps)
    status = {s.key: s.status for s in steps}
    # A cluster installed again (`retry RUN reinstall`, after a manual rollback) has a second
    # install step: that one holds the cluster's slot, not the first one, long done.
    again = {s.cluster for s in steps
             if s.kind == StepKind.INSTALL and s.key != f"{StepKind.INSTALL.value}:{s.cluster}"}
    held: Counter[str] = Counter()
    for s in steps:
        under_way = s.status is StepStatus.ACTIVE or s.claimed
        # An install that is done still restarts its cluster until that cluster is verified.
        restarting = (s.kind == StepKind.INSTALL and s.status is StepStatus.DONE
                      and not (s.cluster in again
                               and s.key == f"{StepKind.INSTALL.value}:{s.cluster}")
                      and status.get(f"{StepKind.VERIFY.value}:{s.cluster}",
                                     StepStatus.DONE) not in DONE_STEP)
        if under_way or restarting:
            held[s.kind] += 1
    return held


def may_start(step: SlotView, held: Counter[str], limits: Mapping[str, int]) -> bool:
    """Tell whether a step may be claimed under the limits (only a new step takes a slot)."""
    limit = limits.get(step.kind)
    return step.status is not StepStatus.PENDING or limit is None or held[step.kind] < limit
