"""`upgradebot rehearse --recover rollback|restore`: the way back after a rehearsed failure.

After the rehearsed upgrade stops (an escalation), the recovery is rehearsed the way operators
would do it: `rollback` rolls the escalated cluster back, aborts the stopped run, and restores
service and the territory plan around it; `restore` restores service from the stopped run,
then rolls back each cluster the restore left out (as its plan offers), and aborts the stopped
run. Every recovery plan is printed, approved and run by the same engine; the summary ends with the
network as it is: every supercluster, its version, its clusters' service, its territories.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import Settings
from bot.engine.durations import say_duration
from bot.engine.planner import Plan
from bot.engine.recovery import family
from bot.engine.states import HELD, RunStatus
from bot.services import Services
from bot.simulator import DmaSimulator

OPERATOR = "U0OPERATOR-REHEARSAL"
MODES = ("rollback", "restore")


class Driver(Protocol):
    """What a rehearsal offers the recovery: its services, simulator, outbox and driver."""

    settings: Settings
    services: Services
    sim: DmaSimulator

    def say(self, line: str) -> None:
        """Print a progress line."""

    def deliver(self) -> None:
        """Deliver the outbox (printing the messages)."""

    def drive_run(self, name: str) -> str:
        """Run the worker until the run stops; return its status."""

    def settle(self) -> None:
        """Let virtual time pass until no cluster is restarting (installs under way finish)."""


@dataclass(frozen=True)
class RecoveryRun:
    """One recovery run as rehearsed."""

    name: str
    strategy: str
    target: str
    status: str
    estimate_s: float
    virtual_s: float
    real_s: float


@dataclass(frozen=True)
class Network:
    """One supercluster at the end: members, versions, service, territories."""

    members: tuple[str, ...]
    versions: tuple[str, ...]
    service: tuple[str, ...]
    territories: tuple[str, ...]


@dataclass
class RecoverySummary:
    """What the recovery rehearsal did and where it left the network."""

    runs: list[RecoveryRun] = field(default_factory=list)
    networks: list[Network] = field(default_factory=list)
    stopped: str = ""  # the stopped run's status at the end

    @property
    def ok(self) -> bool:
        """Every recovery run completed and every cluster is in service."""
        return bool(self.runs) and all(r.status == RunStatus.COMPLETED for r in self.runs) and \
            all(s == "IN_SERVICE" for n in self.networks for s in n.service) and all(
                len({family(v) for v in n.versions}) == 1 for n in self.networks)


def recover(d: Driver, stopped: str, mode: str, clock_s: Callable[[], float]) -> RecoverySummary:
    """Rehearse the recovery of the stopped run; return what was done and the network after it."""
    summary = RecoverySummary()
    status, _ = d.services.run_status(stopped)
    if status not in HELD | {RunStatus.FAILED}:
        d.say(f"{stopped} is {RunStatus(status).words}: nothing to recover")
        return _finish(d, stopped, summary)
    failed = [c for c, _ in _escalated(d, stopped)]
    d.settle()  # an operator waits for the installs already under way before recovering
    if mode == "rollback":
        for cluster in failed:
            _run(d, summary, clock_s, _rollback(d, stopped, cluster))
        _abort(d, stopped)
        # Then the rest of the network: clusters the stopped run left out of service, and the
        # recorded territory plan across the superclusters (an incremental run leaves two).
        _run(d, summary, clock_s, lambda: d.services.restore(stopped, requester=OPERATOR))
    else:
        plan = _run(d, summary, clock_s, lambda: d.services.restore(stopped, requester=OPERATOR))
        left_out = [c for c in failed if plan is not None and c not in plan.order]
        for cluster in left_out:  # the restore plan offers their rollback: take it
            _run(d, summary, clock_s, _rollback(d, stopped, cluster))
        _abort(d, stopped)
    return _finish(d, stopped, summary)


def _rollback(d: Driver, stopped: str, cluster: str) -> Callable[[], tuple[str, Plan]]:
    return lambda: d.services.rollback(stopped, cluster, requester=OPERATOR)


def _escalated(d: Driver, name: str) -> list[tuple[str, str]]:
    rows = d.services.run_status(name)[1]
    clusters = [key.split(":", 1)[1] for key, status, _ in rows
                if status in ("escalated", "failed") and ":" in key]
    return [(c, "") for c in dict.fromkeys(clusters)]


def _run(d: Driver, summary: RecoverySummary, clock_s: Callable[[], float],
         make: Callable[[], tuple[str, Plan]]) -> Plan | None:
    began_real, began_virtual = time.monotonic(), clock_s()
    name, plan = make()
    d.say(f"{name} planned: {plan.strategy.value} of {plan.target}, estimate "
          f"{say_duration(plan.total_estimate_s)}")
    d.deliver()
    required = d.settings.slack.recovery_approvals_required
    approvers = [f"U0APPROVER{i}" for i in range(1, required + 1)]
    for user in approvers:
        d.services.approve(name, user, source="rehearsal", approvers=approvers)
        d.say(f"{name} approved by {user} (rehearsal)")
    status = d.drive_run(name)
    summary.runs.append(RecoveryRun(name, plan.strategy.value, plan.target, status,
                                    plan.total_estimate_s, clock_s() - began_virtual,
                                    time.monotonic() - began_real))
    return plan


def _abort(d: Driver, name: str) -> None:
    if d.services.run_status(name)[0] in HELD | {RunStatus.FAILED}:
        d.say(d.services.control(name, "abort", OPERATOR))
        d.deliver()


def _finish(d: Driver, stopped: str, summary: RecoverySummary) -> RecoverySummary:
    state = d.sim.state()
    seen: set[tuple[str, ...]] = set()
    for name in (c.name for c in d.settings.all_clusters()):
        members = tuple(state["clusters"][name]["members"])
        if members in seen:
            continue
        seen.add(members)
        # A stand-alone cluster keeps a copy of territories that name clusters it no longer
        # has: only those whose primary is a member are this supercluster's to serve.
        territories = tuple(f"{t.name or t.territory_id} on {t.active or 'no cluster'}"
                            for t in d.sim.territories_of(name) if t.primary in members)
        summary.networks.append(Network(
            members, tuple(state["clusters"][m]["version"] for m in members),
            tuple(state["clusters"][m]["serviceStatus"] for m in members), territories))
    summary.stopped = str(d.services.run_status(stopped)[0])
    return summary


def print_summary(summary: RecoverySummary, out: Callable[[str], None]) -> None:
    """The recovery part of the rehearsal's summary."""
    out("-" * 72)
    for r in summary.runs:
        out(f"{r.name} {RunStatus(r.status).words} — {r.strategy} of {r.target}: "
            f"{say_duration(r.virtual_s)} (estimate {say_duration(r.estimate_s)}), "
            f"{r.real_s:.1f} s of real time")
    out(f"The stopped run is {RunStatus(summary.stopped).words} now. The network now (one line "
        "per supercluster):")
    for n in summary.networks:
        clusters = ", ".join(f"{m} {v} {s.lower().replace('_', ' ')}"
                             for m, v, s in zip(n.members, n.versions, n.service, strict=True))
        out(f"  [{clusters}] territories: {', '.join(n.territories) or 'none'}")
    verdict = ("every cluster in service, one version family per supercluster" if summary.ok
               else "NOT every cluster is in service, or a recovery run did not complete")
    out(f"  {verdict}")
