"""A cluster's install estimate is validated at the edge: NaN, infinity, zero, negative or
implausible estimates (over dma.max_install_estimate, default 24 h) are a bad answer from that
cluster with a clear message, never a figure shown to approvers; the engine's loops are bounded."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest

from bot.dma.errors import DmaBadResponse
from bot.dma.models import InstalledSoftware
from bot.engine.plans import StepKind, StepSpec
from bot.engine.schedule import schedule_estimate
from tests.support.workspace import OPERATOR, Workspace, workspace

PACKAGE = "https://files.example.com/dma/10.1.0.1.bin"
BAD = [math.nan, math.inf, -math.inf, -5.0, 0.0, 10.0**12, 24 * 60 + 1]


def staged(ws: Workspace, cluster: str, minutes: float) -> None:
    """Upload the package to a cluster that will report `minutes` as its install estimate."""
    ws.sim.set_estimate(cluster, minutes)
    ws.services.clients(cluster).upload_package_url(PACKAGE, None)
    ws.clock.advance(3600)  # the upload is done


@pytest.mark.parametrize("minutes", BAD, ids=[repr(m) for m in BAD])
def test_the_client_refuses_an_estimate_it_cannot_believe(tmp_path: Path, minutes: float) -> None:
    with workspace(tmp_path) as ws:
        staged(ws, "lab", minutes)
        with pytest.raises(DmaBadResponse) as caught:
            ws.services.clients("lab").installed_software()
    said = str(caught.value)
    assert "DMA lab: GET /installed-software" in said
    assert "'estimatedInstallMinutes' should be a number of minutes above 0 and at most 1440" \
        in said and "cannot be trusted" in said


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_other_numbers_must_be_finite_too(value: float) -> None:
    from bot.dma.models import OperationStatus

    with pytest.raises(DmaBadResponse, match="'percentageComplete' should be a finite number"):
        OperationStatus.from_json({"operationType": "UPGRADE", "percentageComplete": value})


def test_a_plausible_estimate_is_used_and_the_limit_is_configurable() -> None:
    data = {"systemVersion": "10.0.0.3", "estimatedInstallMinutes": 90}
    assert InstalledSoftware.from_json(data).estimated_install_minutes == 90.0
    with pytest.raises(DmaBadResponse, match="at most 60 "):
        InstalledSoftware.from_json(data, max_estimate_minutes=60)


@pytest.mark.parametrize("minutes", [math.nan, math.inf, -5.0, 10.0**12],
                         ids=["nan", "inf", "negative", "huge"])
def test_plan_says_the_cluster_answered_badly_and_posts_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, minutes: float) -> None:
    with workspace(tmp_path) as ws:
        staged(ws, "lab", minutes)
        started = time.monotonic()
        reply = ws.command("plan lab 10.1.0.1", user=OPERATOR)
        assert time.monotonic() - started < 5  # no endless estimate loop
        answer = reply.texts()[-1]
        assert answer.startswith("⚠️") and "lab" in answer
        assert "estimatedInstallMinutes" in answer and "cannot be trusted" in answer
        ws.deliver()
        assert ws.services.history() == []  # no plan reached approvers
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_schedule_estimate_refuses_durations_that_never_end() -> None:
    steps = [StepSpec(key="a", kind=StepKind.INSTALL, cluster="lab", deps=(),
                      estimate_s=math.nan, title="a")]
    with pytest.raises(ValueError, match="no finite duration"):
        schedule_estimate(steps, max_parallel={StepKind.INSTALL: 1})
    steps = [StepSpec(key="a", kind=StepKind.INSTALL, cluster="lab", deps=(), estimate_s=60.0,
                      title="a")]
    with pytest.raises(ValueError, match="no finite duration"):
        schedule_estimate(steps, {"a": -1.0}, max_parallel={StepKind.INSTALL: 1})
    assert schedule_estimate(steps, max_parallel={StepKind.INSTALL: 1})[0] == 60.0


def test_a_bad_estimate_during_a_run_stops_it_with_the_reason_not_a_figure(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.workspace import APPROVERS

    with workspace(tmp_path) as ws:
        ws.command("plan lab 10.1.0.1")
        ws.sim.set_estimate("lab", math.nan)  # shown once the package is uploaded
        ws.click("plan_approve", user=APPROVERS[0])
        ws.click("plan_approve", user=APPROVERS[1])
        ws.acknowledge()
        status = ws.drive("R1", max_hours=2)
        assert status == "failed"
        said = "\n".join(ws.thread())
        assert "estimatedInstallMinutes" in said and "cannot be trusted" in said
        assert "nan min" not in said.lower()
        assert ws.sim.count("POST", "/installed-software/upgrade-package/apply") == 0
        assert not [r for r in caplog.records if r.exc_info]
