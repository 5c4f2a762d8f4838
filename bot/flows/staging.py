"""Staging, the guide's time-saver: upload the package to every cluster ahead of the window.

`/upgrade stage TARGET VERSION` asks every cluster of the target to fetch the package, waits
(bounded by `timing.upload_timeout`) until each shows it, and checks its SHA-1 and estimate.
Nothing else is touched: no service status, no install. A run whose clusters are staged finds the
package there and does not upload it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.dma.errors import DmaError
from bot.engine.versions import parse_version, same_version
from bot.flows.base import Flow, ServiceError
from storage import repo
from storage.db import unit_of_work


@dataclass(frozen=True)
class StagedCluster:
    """What staging found on one cluster."""

    cluster: str
    ok: bool
    detail: str
    estimate_min: float | None = None


class Staging(Flow):
    """Upload and check a package on every cluster of a target, touching nothing else."""

    def stage(self, target_name: str, version: str, user: str, *,
              pause: Callable[[float], None] = time.sleep) -> list[StagedCluster]:
        """Upload the package where it is missing; wait (bounded) and check each cluster."""
        target = self.settings.target(target_name)
        version = str(parse_version(version))
        package = self.settings.packages.get(version)
        if package is None:
            known = ", ".join(sorted(self.settings.packages)) or "none"
            raise ServiceError(f"no package for {version} in the config (packages: {known})")
        names = [c.name for c in target.clusters]
        asked = [n for n in names if self._needs_upload(n, version)]
        for name in asked:
            self.clients(name).upload_package_url(package.url, package.sha1)
        poll = self.settings.timing.poll_interval.total_seconds()
        deadline = self.settings.timing.upload_timeout.total_seconds()
        waited = 0.0
        rows = [self._check(n, version, package.sha1) for n in names]
        while waited < deadline and any(r.detail.startswith("fetching") for r in rows):
            pause(poll)
            waited += poll
            rows = [self._check(n, version, package.sha1) for n in names]
        with unit_of_work(self.sessions) as session:
            repo.audit(session=session, at=self.clock.now(), actor=user, action="stage",
                       detail={"target": target.name, "version": version, "asked": asked,
                               "clusters": {r.cluster: r.detail for r in rows}})
        return rows

    def _needs_upload(self, name: str, version: str) -> bool:
        try:
            sw = self.clients(name).installed_software()
        except DmaError as exc:
            raise ServiceError(f"cannot read {name}: {exc}") from exc
        return not (same_version(sw.system_version, version)
                    or same_version(sw.upgrade_version, version))

    def _check(self, name: str, version: str, sha1: str | None) -> StagedCluster:
        try:
            sw = self.clients(name).installed_software()
        except DmaError as exc:
            return StagedCluster(name, False, f"cannot read it: {exc}")
        if same_version(sw.system_version, version):
            return StagedCluster(name, True, f"already runs {version}: nothing to stage")
        if not same_version(sw.upgrade_version, version):
            return StagedCluster(name, False, f"fetching {version} (shows "
                                 f"{sw.upgrade_version or 'no package'} so far)")
        if sha1 and sw.sha1 and sw.sha1.lower() != sha1.lower():
            return StagedCluster(name, False, f"the uploaded package has SHA-1 {sw.sha1}, the "
                                 f"config says {sha1}: not the right package")
        checked = f"SHA-1 {sw.sha1} matches the config" if sha1 and sw.sha1 else (
            "no SHA-1 in the config to compare" if not sha1 else "the cluster shows no SHA-1")
        estimate = sw.estimated_install_minutes
        shown = f"install estimate {estimate:g} min" if estimate is not None else "no estimate"
        return StagedCluster(name, True, f"{version} uploaded; {checked}; {shown}", estimate)
