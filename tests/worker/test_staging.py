"""Staging ahead of the window: upload and check on every cluster; the run then uploads nothing."""

from __future__ import annotations

import pytest

from bot.flows.base import ServiceError
from tests.support.engine_harness import harness
from tests.support.pausing import pause_on

pytestmark = pytest.mark.slow
UPLOAD = "/installed-software/upgrade-package/url"


def test_staging_then_running_sends_no_second_upload(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        before = len(h.sim.requests)
        rows = h.services.stage("global", "10.1.0.1", "U0OPERATOR", pause=pause_on(h.clock))
        assert [r.cluster for r in rows] == ["dallas", "denver", "austin"]
        assert all(r.ok for r in rows), rows
        assert "SHA-1 5f2b6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f matches the config" in rows[0].detail
        assert [r.estimate_min for r in rows] == [35, 30, 40]
        # Only uploads were sent: no service status, no install, no territory change.
        assert {(c, p) for c, _, p in h.mutations_after(before)} == {
            (c, UPLOAD) for c in ("dallas", "denver", "austin")}
        # Staging again changes nothing; it reports the same.
        again = h.services.stage("global", "10.1.0.1", "U0OPERATOR", pause=pause_on(h.clock))
        assert again == rows
        # The plan now knows the estimates, and the run confirms instead of uploading.
        plan = h.services.plan("global", "10.1.0.1", "full-outage")
        assert plan.step("upload:dallas").title.startswith("Confirm that the 10.1.0.1 package")
        name = h.plan(strategy="full-outage")
        assert h.drive(name) == "completed"
        for cluster in ("dallas", "denver", "austin"):
            assert h.sim.count("POST", UPLOAD, cluster) == 1


def test_staging_a_wrong_package_says_so_per_cluster(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        # Someone uploaded 10.1.0.1 on denver by hand, from a file with another checksum.
        h.worker.clients("denver").upload_package_file(b"DMA-PACKAGE 10.1.0.1\nother build")
        rows = {r.cluster: r for r in h.services.stage("global", "10.1.0.1", "U0OPERATOR",
                                                      pause=pause_on(h.clock))}
        assert not rows["denver"].ok and "not the right package" in rows["denver"].detail
        assert rows["dallas"].ok
        with pytest.raises(ServiceError, match=r"no package for 9\.9\.9"):
            h.services.stage("global", "9.9.9", "U0OPERATOR", pause=pause_on(h.clock))
