"""A rollback killed mid-step (a real process, SIGKILL) and finished by another: one call."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.engine.guide import CHECKLIST_ACKS
from tests.worker.test_processes import (
    setting_up,
    start_worker,
    status_of,
    stop,
    wait_until,
)

pytestmark = pytest.mark.slow

ROLLBACK = "/installed-software/rollback"
OVER = ("completed", "failed", "escalated")


def test_a_rollback_killed_mid_step_is_finished_by_another_worker_with_one_call(
        tmp_path: Path, database_url: str) -> None:
    with setting_up(tmp_path, database_url) as (sim, config, services):
        upgrade = services.submit(services.plan("lab", "10.1.0.1"), requester="U0REQUESTER")
        for item in CHECKLIST_ACKS:  # an operator acknowledges the checklist, as the buttons do
            services.acknowledge(upgrade, item, "U0OPERATOR")
        for user in ("U0APPROVER1", "U0APPROVER2"):
            services.approve(upgrade, user)
        first = start_worker("first", config, database_url)
        try:
            wait_until(lambda: status_of(services, upgrade) in OVER, 60, f"{upgrade} to end")
            assert status_of(services, upgrade) == "completed"
            name, _ = services.rollback(upgrade, "lab", requester="U0OPERATOR")
            services.approve(name, "U0APPROVER1")  # recovery_approvals_required: 1
            # Kill the worker (no clean-up) as soon as the rollback request has gone out.
            wait_until(lambda: sim.count("POST", ROLLBACK, "lab") >= 1, 60, "the rollback")
            first.kill()
            first.wait(timeout=10)
        finally:
            stop(first)
        second = start_worker("second", config, database_url)
        try:
            wait_until(lambda: status_of(services, name) in OVER, 90, f"{name} to finish")
        finally:
            log = stop(second)
        assert status_of(services, name) == "completed", log
        assert sim.version_of("lab") == "10.0.0.3"
        assert sim.count("POST", ROLLBACK, "lab") == 1
