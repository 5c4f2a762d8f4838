"""`upgradebot rehearse --fault … --recover rollback|restore` as an operator sees it."""

from __future__ import annotations

import re

import pytest

from bot.cli import main

FAST = ["--speed", "100000", "--fault", "denver=one-server"]


@pytest.mark.slow
def test_rehearsed_rollback_after_a_full_outage_escalation(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", *FAST, "--recover", "rollback"]) == 0
    out = capsys.readouterr().out
    # The escalation with the service impact, then the rollback plan, its approval and run.
    # Installs run side by side now: other clusters may be out of service beside denver.
    assert "escalation on *denver*" in out
    assert re.search(r"Out of service: [^\n]*\bdenver\b", out), out
    assert "*R2* — rollback plan for cluster *denver*: 10.1.0.1 → *10.0.0.3* (recovers R1)" in out
    assert "R2 approved by U0APPROVER1 (rehearsal)" in out
    assert "R2 completed — rollback of denver" in out
    # The abort states the impact; the restore brings every cluster back into service.
    assert "R1 — aborted by" in out and "Service now:" in out
    assert "R3 completed — restore of global" in out
    assert "[dallas 10.1.0.1 in service, austin 10.1.0.1 in service] territories: Americas on " \
           "dallas, South on austin" in out
    assert "[denver 10.0.0.3 in service] territories: West on denver" in out
    assert "every cluster in service, one version family per supercluster" in out


@pytest.mark.slow
def test_rehearsed_restore_after_an_incremental_escalation(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rehearse", "--strategy", "incremental", *FAST, "--recover", "restore"]) == 0
    out = capsys.readouterr().out
    assert "*R2* — restore plan for supercluster *global*" in out
    assert "denver stays out of service: 1 of 2 servers up; `/upgrade rollback R1 denver`" in out
    # The incremental order is by load: denver (fewest calls) leaves first and escalates, so
    # the others are still on 10.0 in the old supercluster. The restore's offer is taken:
    # denver is rolled back and joins dallas (never the reverse).
    assert "Then denver joins dallas" in out
    assert "[dallas 10.0.0.3 in service, austin 10.0.0.3 in service, denver 10.0.0.3 in " \
           "service] territories: Americas on dallas, West on denver, South on austin" in out
    assert "every cluster in service, one version family per supercluster" in out
