"""The final checks, read-only, at any time: `/upgrade verify TARGET` and the re-verification.

Only GETs: the software and servers of each cluster, and for a supercluster its member list,
warnings and territories. The target version is the newest one the clusters report: a cluster
left behind shows up as a version that differs, as in the run's own final check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.config import Settings
from bot.dma.client import DmaClient
from bot.dma.errors import DmaError
from bot.engine.verification import (
    ClusterReport,
    Report,
    SuperclusterReport,
    verify_cluster,
    verify_supercluster,
)
from bot.engine.versions import parse_version
from bot.messages.common import Payload
from bot.messages.thread import report_message


@dataclass(frozen=True)
class CheckResult:
    """What the final checks found, target by target."""

    target: str
    at: datetime
    reports: tuple[Report, ...]
    unreachable: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Every check passed and every cluster answered."""
        return not self.unreachable and all(r.verdict.ok for r in self.reports)

    @property
    def summary(self) -> str:
        """One line: clean, or the first problem."""
        if self.unreachable:
            return f"not reachable: {'; '.join(self.unreachable)}"
        bad = [r for r in self.reports if not r.verdict.ok]
        return bad[0].verdict.summary if bad else self.reports[-1].verdict.summary


def final_checks(settings: Settings, clients: Callable[[str], DmaClient], target_name: str,
                 now: datetime) -> CheckResult:
    """Read the target's clusters and judge them as the run's final check would (read-only)."""
    target = settings.target(target_name)
    reports: list[Report] = []
    unreachable: list[str] = []
    reads = {}
    for spec in target.clusters:
        try:
            reads[spec.name] = (clients(spec.name).installed_software(),
                                clients(spec.name).ha_status())
        except DmaError as exc:
            unreachable.append(f"{spec.name}: {exc}")
    if not reads:
        return CheckResult(target.name, now, (), tuple(unreachable))
    newest = max((sw.system_version for sw, _ in reads.values()), key=parse_version)
    servers = {spec.name: spec.servers for spec in target.clusters}
    for name, (sw, ha) in reads.items():
        verdict = verify_cluster(expected_servers=servers[name], target_version=newest,
                                 installed=sw, ha=ha)
        reports.append(ClusterReport(name, verdict))
    if target.kind == "supercluster" and not unreachable:
        via = next(iter(reads))
        try:
            view, territories = clients(via).supercluster(), clients(via).territories()
        except DmaError as exc:
            unreachable.append(f"{via}: {exc}")
        else:
            verdict = verify_supercluster(expected=servers, target_version=newest, view=view,
                                          territories=territories,
                                          ha={n: ha for n, (_, ha) in reads.items()})
            reports.append(SuperclusterReport(target.name, verdict, tuple(sorted(view.ids)),
                                              tuple(view.warnings)))
    return CheckResult(target.name, now, tuple(reports), tuple(unreachable))


def check_message(result: CheckResult, *, heading: str, tz: str = "UTC") -> Payload:
    """The post with the result: one line on top, then each report as the thread shows it."""
    from zoneinfo import ZoneInfo

    when = result.at.astimezone(ZoneInfo(tz)).strftime(f"%Y-%m-%d %H:%M {tz}")
    head = (f"{'✅' if result.ok else '❌'} {heading}: final checks of *{result.target}* "
            f"(read-only) at {when} — {'all clean' if result.ok else result.summary}")
    parts = [head, *(f"✗ not reachable: {u}" for u in result.unreachable)]
    parts += [str(report_message(heading, r)["text"]) for r in result.reports]
    return {"text": "\n".join(parts)}

