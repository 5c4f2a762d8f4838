"""Verification rules: the vendor's three escalation conditions and the bot's extra checks (pure).

`verify_cluster` runs after a cluster is back from its install; `login_verdict` decides, while it
is still unreachable, whether to keep waiting or to escalate (condition 1); `verify_join` and
`verify_supercluster` check the re-formed supercluster.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from bot.dma.models import (
    SUCCESS_STATUSES,
    HaStatus,
    InstalledSoftware,
    Member,
    Node,
    OperationStatus,
    SuperclusterView,
    Territory,
)
from bot.engine.versions import same_version


class Condition(StrEnum):
    """Why a cluster or supercluster failed verification."""

    CANNOT_LOG_IN = "cannot-log-in"
    ONE_SERVER = "one-server"
    VERSION_MISMATCH = "version-mismatch"
    SERVER_DOWN = "server-down"  # a one-server cluster whose server is not UP
    PRIVATE_LINK = "private-link"
    OPERATION_HISTORY = "operation-history"
    JOIN_FAILED = "join-failed"
    SUPERCLUSTER_CHECK = "supercluster-check"
    INSTALL_NOT_TAKEN = "install-not-taken"  # every server still on the old version


# dma-procedures.md, "Call Polycom Global Services if, for any cluster".
VENDOR_CONDITIONS: frozenset[Condition] = frozenset(
    {Condition.CANNOT_LOG_IN, Condition.ONE_SERVER, Condition.VERSION_MISMATCH})

CONDITION_TEXT: Mapping[Condition, str] = {
    Condition.CANNOT_LOG_IN: "After waiting significantly longer than the estimated install time, "
                             "you still cannot log back in.",
    Condition.ONE_SERVER: "You can log in, but the Dashboard shows only one server for a "
                          "two-server cluster.",
    Condition.VERSION_MISMATCH: "The package version numbers on the two servers are not the same.",
    Condition.SERVER_DOWN: "The cluster's only server is not up.",
    Condition.PRIVATE_LINK: "The private network link between the two servers is not working.",
    Condition.OPERATION_HISTORY: "The operation history does not show a successful upgrade to "
                                 "the target version on every server.",
    Condition.JOIN_FAILED: "The cluster did not join the new supercluster as expected.",
    Condition.SUPERCLUSTER_CHECK: "The supercluster does not look as it should after the upgrade.",
    Condition.INSTALL_NOT_TAKEN: "The install did not take: the cluster is back, but every "
                                 "server still runs the old version.",
}

# The checks that test one of the vendor's three conditions; every other check is the bot's own.
VENDOR_CHECKS: frozenset[str] = frozenset({"log in", "servers up", "same package version"})

# When several checks fail, the reported condition is the first of these that failed.
_PRIORITY: tuple[Condition, ...] = (
    Condition.ONE_SERVER, Condition.SERVER_DOWN, Condition.INSTALL_NOT_TAKEN,
    Condition.VERSION_MISMATCH,
    Condition.PRIVATE_LINK, Condition.OPERATION_HISTORY)


@dataclass(frozen=True)
class Check:
    """One recorded check and what it found."""

    name: str
    ok: bool
    detail: str

    @property
    def vendor(self) -> bool:
        """True when this check is one of the guide's three conditions (else the bot's own)."""
        return self.name in VENDOR_CHECKS


@dataclass(frozen=True)
class ServerReport:
    """One server as verification saw it (for the escalation message)."""

    node_id: int
    host_name: str
    state: str
    package_version: str | None
    history_version: str | None
    history_status: str | None
    address: str | None = None
    serial: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome: no condition when every check passed."""

    condition: Condition | None
    checks: tuple[Check, ...]
    servers: tuple[ServerReport, ...] = ()
    summary: str = ""

    @property
    def ok(self) -> bool:
        """True when no condition holds."""
        return self.condition is None

    def to_json(self) -> dict[str, Any]:
        """The stored form: ok, condition, each check, each server."""
        servers = [{"node": s.node_id, "host": s.host_name, "state": s.state,
                    "version": s.package_version, "history": s.history_status,
                    "address": s.address, "serial": s.serial}
                   for s in self.servers]
        return {"ok": self.ok, "condition": self.condition.value if self.condition else None,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
                "servers": servers}


@dataclass(frozen=True)
class ClusterReport:
    """One cluster's verification as the thread shows it: the verdict, and the times waited."""

    cluster: str
    verdict: Verdict
    waited_min: float | None = None
    estimate_min: float | None = None
    kind = "verification"

    @property
    def subject(self) -> str:
        """The cluster the report is about."""
        return self.cluster

    def to_json(self) -> dict[str, Any]:
        """The stored form (step data, escalation details)."""
        times = {k: v for k, v in (("waited_min", self.waited_min),
                                   ("estimate_min", self.estimate_min)) if v is not None}
        return {"cluster": self.cluster, **self.verdict.to_json(), **times}


@dataclass(frozen=True)
class SuperclusterReport:
    """The final check of a supercluster as the thread shows it."""

    target: str
    verdict: Verdict
    members: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    kind = "final_check"

    @property
    def subject(self) -> str:
        """The supercluster the report is about."""
        return self.target

    def to_json(self) -> dict[str, Any]:
        """The stored form (step data, escalation details)."""
        return {"cluster": self.target, **self.verdict.to_json(), "members": list(self.members),
                "warnings": list(self.warnings)}


# What a step hands to the thread, unchanged from the verifier to the message builder.
Report = ClusterReport | SuperclusterReport


def login_deadline(applied_at: datetime, estimate_s: float, login_grace_s: float,
                   factor: float) -> datetime:
    """Return when "significantly longer than the estimated install time" has passed."""
    return applied_at + timedelta(seconds=factor * (estimate_s + login_grace_s))


def overdue(*, now: datetime, applied_at: datetime, estimate_s: float, login_grace_s: float,
            factor: float) -> dict[str, float] | None:
    """Past the estimate plus the login grace but not yet escalated: the minutes, else None.

    Returned as what the board and the thread say: minutes waited, the estimate, how far past
    it, and when the vendor's "significantly longer" escalates.
    """
    waited = (now - applied_at).total_seconds()
    if waited <= estimate_s + login_grace_s:
        return None
    return {"waited_min": round(waited / 60, 1), "estimate_min": round(estimate_s / 60, 1),
            "past_min": round((waited - estimate_s) / 60, 1),
            "escalate_at_min": round(factor * (estimate_s + login_grace_s) / 60, 1)}


def login_verdict(*, now: datetime, applied_at: datetime, estimate_s: float,
                  login_grace_s: float, factor: float,
                  logged_in: bool) -> Literal["ok", "wait", "escalate"]:
    """Decide, after an install, whether the cluster is back, worth waiting for, or escalated."""
    if logged_in:
        return "ok"
    deadline = login_deadline(applied_at, estimate_s, login_grace_s, factor)
    return "escalate" if now >= deadline else "wait"


def login_failure(*, now: datetime, applied_at: datetime, estimate_s: float) -> Verdict:
    """Return the CANNOT_LOG_IN verdict, with the times an escalation message shows."""
    waited = (now - applied_at).total_seconds()
    detail = f"waited {waited / 60:.0f} min for an install estimated at {estimate_s / 60:.0f} min"
    return Verdict(Condition.CANNOT_LOG_IN, (Check("log in", False, detail),),
                   summary=f"{CONDITION_TEXT[Condition.CANNOT_LOG_IN]} ({detail})")


def verify_cluster(*, expected_servers: int, target_version: str, installed: InstalledSoftware,
                   ha: HaStatus) -> Verdict:
    """Check a cluster after its install; name the first condition that holds, if any."""
    reports = tuple(_report(node, installed) for node in ha.nodes)
    two = expected_servers >= 2
    results = (
        _servers_up(ha.nodes, two),
        _same_version(ha.nodes),
        _on_target(ha.nodes, installed, target_version),
        _history_agrees(reports),
        (Check("private link", ha.ha_connected or not two,
               "one-server cluster: no private link" if not two else
               "private link between the servers " + ("up" if ha.ha_connected else "down")),
         Condition.PRIVATE_LINK),
        _operation_history(reports, target_version),
    )
    failed = {cond for check, cond in results if not check.ok}
    if _not_taken(ha.nodes, installed, target_version):
        failed.add(Condition.INSTALL_NOT_TAKEN)
    condition = next((c for c in _PRIORITY if c in failed), None)
    checks = tuple(check for check, _ in results)
    return Verdict(condition, checks, reports, _summary(condition, checks, target_version))


def _not_taken(nodes: Sequence[Node], installed: InstalledSoftware, target: str) -> bool:
    """True when the cluster answers but no server runs the target: the install never happened."""
    known = [n.package_version for n in nodes if n.package_version is not None]
    return not same_version(installed.system_version, target) and not any(
        same_version(v, target) for v in known)


def _report(node: Node, installed: InstalledSoftware) -> ServerReport:
    row = installed.latest_for_server(node.node_id)
    return ServerReport(node.node_id, _name(node), node.state, node.package_version,
                        row.to_version if row else None, row.status if row else None,
                        node.address, node.serial)


def _name(node: Node) -> str:
    return node.host_name or f"server {node.node_id}"


def _states(nodes: Sequence[Node]) -> str:
    return ", ".join(f"{_name(n)} {n.state}" for n in nodes) or "no server reported"


def _servers_up(nodes: Sequence[Node], two: bool) -> tuple[Check, Condition]:
    up = sum(1 for n in nodes if n.state == "UP")
    needed = 2 if two else 1
    detail = f"{up} of {needed} server{'s' if two else ''} up ({_states(nodes)})"
    return (Check("servers up", up >= needed, detail),
            Condition.ONE_SERVER if two else Condition.SERVER_DOWN)


def _versions(nodes: Sequence[Node]) -> str:
    return ", ".join(f"{_name(n)} {n.package_version}" for n in nodes
                     if n.package_version is not None)


def _same_version(nodes: Sequence[Node]) -> tuple[Check, Condition]:
    known = [n.package_version for n in nodes if n.package_version is not None]
    if not known:
        return (Check("same package version", True,
                      "the servers report no package version; the system version is used"),
                Condition.VERSION_MISMATCH)
    same = all(same_version(v, known[0]) for v in known)
    detail = ("all servers on " if same else "package versions differ: ") + (
        known[0] if same else _versions(nodes))
    return Check("same package version", same, detail), Condition.VERSION_MISMATCH


def _on_target(nodes: Sequence[Node], installed: InstalledSoftware,
               target: str) -> tuple[Check, Condition]:
    known = [n.package_version for n in nodes if n.package_version is not None]
    ok = same_version(installed.system_version, target) and all(
        same_version(v, target) for v in known)
    running = f"system version {installed.system_version}" + (
        f", servers {_versions(nodes)}" if known else "")
    detail = f"on the target {target}" if ok else f"not on the target {target}: {running}"
    return Check("on the target", ok, detail), Condition.VERSION_MISMATCH


def _history_agrees(reports: Sequence[ServerReport]) -> tuple[Check, Condition]:
    problems = [f"{r.host_name}: history says {r.history_version}, server runs "
                f"{r.package_version}" for r in reports if r.package_version is not None
                and not same_version(r.history_version, r.package_version)]
    detail = "; ".join(problems) or "each server's newest history row matches its version"
    return Check("history agrees", not problems, detail), Condition.OPERATION_HISTORY


def _operation_history(reports: Sequence[ServerReport], target: str) -> tuple[Check, Condition]:
    rows = [f"{r.host_name}: {r.history_status or 'no row'} to {r.history_version}"
            for r in reports]
    ok = bool(reports) and all(
        r.history_status in SUCCESS_STATUSES and same_version(r.history_version, target)
        for r in reports)
    return (Check("operation history", ok, "; ".join(rows) or "no server reported"),
            Condition.OPERATION_HISTORY)


def _summary(condition: Condition | None, checks: Sequence[Check], target: str) -> str:
    if condition is None:
        return f"All checks passed on {target}: " + "; ".join(c.detail for c in checks) + "."
    first = next(c for c in checks if not c.ok)
    return f"{CONDITION_TEXT[condition]} ({first.name}: {first.detail})"


def verify_join(*, cluster: str, seed: str, members: Collection[str], view: SuperclusterView,
                operation: OperationStatus | None = None) -> Verdict:
    """Check that a cluster joined the seed's supercluster, which now has exactly `members`."""
    member = view.member(cluster)
    checks = [
        Check("join operation", operation is not None and operation.state == "COMPLETE",
              f"{operation.state}: {operation.message}" if operation else "not reported"),
        Check("joined", member is not None and member.status == "SUPERCLUSTERED",
              f"{cluster} is {member.status if member else 'not listed'}"),
        _same_set("members", view.ids, set(members) | {seed, cluster}),
        Check("no warnings", not view.warnings, "; ".join(view.warnings) or "no warnings"),
    ]
    bad = any(not c.ok for c in checks)
    summary = (f"{CONDITION_TEXT[Condition.JOIN_FAILED]} ({_first_failure(checks)})" if bad
               else f"{cluster} joined {seed}'s supercluster")
    return Verdict(Condition.JOIN_FAILED if bad else None, tuple(checks), summary=summary)


def verify_supercluster(*, expected: Mapping[str, int], target_version: str,
                        view: SuperclusterView, territories: Sequence[Territory],
                        ha: Mapping[str, HaStatus]) -> Verdict:
    """Final check: members, status, warnings, versions, servers up, territories on primary."""
    members = view.clusters
    checks = (
        _same_set("members", view.ids, set(expected)),
        _all_ok("superclustered", [(m.cluster_id, m.status) for m in members], "SUPERCLUSTERED"),
        _all_ok("in service", [(m.cluster_id, m.service_status) for m in members], "IN_SERVICE"),
        Check("no warnings", not view.warnings, "; ".join(view.warnings) or "no warnings"),
        _versions_on(members, target_version),
        _servers_expected(expected, ha),
        _on_primary(territories),
    )
    bad = any(not c.ok for c in checks)
    summary = (f"{CONDITION_TEXT[Condition.SUPERCLUSTER_CHECK]} ({_first_failure(checks)})" if bad
               else f"{len(expected)} clusters superclustered and in service on "
                    f"{target_version}; every territory on its primary")
    return Verdict(Condition.SUPERCLUSTER_CHECK if bad else None, checks, summary=summary)


def _first_failure(checks: Sequence[Check]) -> str:
    first = next(c for c in checks if not c.ok)
    return f"{first.name}: {first.detail}"


def _same_set(name: str, listed: Collection[str], wanted: Collection[str]) -> Check:
    missing, extra = sorted(set(wanted) - set(listed)), sorted(set(listed) - set(wanted))
    parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
        [f"unexpected {', '.join(extra)}"] if extra else [])
    return Check(name, not parts, "; ".join(parts) or ", ".join(sorted(listed)))


def _all_ok(name: str, values: Sequence[tuple[str, str]], wanted: str) -> Check:
    wrong = [f"{who} is {value}" for who, value in values if value != wanted]
    return Check(name, not wrong, "; ".join(wrong) or f"every cluster {wanted}")


def _versions_on(members: Sequence[Member], target: str) -> Check:
    wrong = [f"{m.cluster_id} runs {m.version}" for m in members
             if not same_version(m.version, target)]
    return Check("versions", not wrong, "; ".join(wrong) or f"every cluster on {target}")


def _servers_expected(expected: Mapping[str, int], ha: Mapping[str, HaStatus]) -> Check:
    wrong = []
    for name, count in expected.items():
        status = ha.get(name)
        up = sum(1 for n in status.nodes if n.state == "UP") if status else None
        if up != count:
            wrong.append(f"{name}: {'no status' if up is None else up} of {count} servers up")
    return Check("servers up", not wrong, "; ".join(wrong) or "every server up")


def _on_primary(territories: Sequence[Territory]) -> Check:
    # A territory whose active cluster is not reported counts as not verified, hence failing.
    wrong = [f"{t.name or t.territory_id} is on {t.active or 'no cluster'}, primary {t.primary}"
             for t in territories if t.primary is not None and t.active != t.primary]
    return Check("territories on primary", not wrong,
                 "; ".join(wrong) or "every territory on its primary")
