"""Maintenance windows, overrun approval, and the drain timeout that needs an operator."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.engine.windows import Window
from tests.support.engine_harness import harness

pytestmark = pytest.mark.slow  # whole upgrades in virtual time


def test_run_waits_for_its_window(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        window = Window(start=h.clock.now() + timedelta(hours=2), duration=timedelta(hours=4),
                        tz="America/Chicago")
        name = h.plan(strategy="full-outage", window=window)
        # Approved ahead of the window: scheduled, and nothing is sent to any cluster.
        assert h.run(name).status == "scheduled"
        seen = len(h.sim.requests)
        h.clock.advance(timedelta(hours=1, minutes=59))
        h.worker.tick()
        assert h.run(name).status == "scheduled"
        assert h.mutations_after(seen) == []
        # At the window's start it runs, and it completes inside the window.
        h.clock.advance(timedelta(minutes=1))
        assert h.drive(name) == "completed"
        run = h.run(name)
        assert run.started_at is not None and run.finished_at is not None
        assert run.started_at >= window.start and run.finished_at <= window.end


def test_unapproved_plan_expires_when_its_window_is_too_short(database_url: str) -> None:
    with harness(database_url) as h:
        window = Window(start=h.clock.now() + timedelta(hours=1), duration=timedelta(hours=2),
                        tz="UTC")
        plan = h.services.plan("global", "10.1.0.1", "full-outage")
        name = h.services.submit(plan, requester="U0REQUESTER", window=window)
        h.services.approve(name, "U0APPROVER1")  # one approval of the two needed
        h.worker.tick()
        assert h.run(name).status == "awaiting_approval"
        # When the window no longer leaves room for the estimated duration, the plan expires.
        h.clock.advance(window.end - h.clock.now() - timedelta(seconds=plan.total_estimate_s - 60))
        h.worker.tick()
        h.outbox.deliver()
        assert h.run(name).status == "expired"
        assert any("expired" in t for t in h.sink.texts())
        # A late approval changes nothing.
        result = h.services.approve(name, "U0APPROVER2")
        assert not result.counted and h.run(name).status == "expired"


def test_run_stops_at_a_safe_point_to_ask_for_an_overrun(sqlite_url: str) -> None:
    with harness(sqlite_url) as h:
        # A one-hour window for a plan estimated at well over an hour.
        window = Window(start=h.clock.now(), duration=timedelta(hours=1), tz="UTC")
        name = h.plan(strategy="full-outage", window=window)
        assert h.drive(name) == "awaiting_overrun"
        # It stopped before the outage began: every cluster is still in service.
        assert h.sim.members_of("dallas") and h.applies("dallas") == 0
        assert not [r for r in h.sim.requests if r.path.endswith("set-service-status")]
        assert any("approve the overrun" in t for t in h.sink.texts())
        # An approver lets it overrun; it goes on to the end.
        h.services.control(name, "overrun", "U0APPROVER1")
        assert h.drive(name) == "completed"


def test_slow_drain_pauses_until_an_operator_decides(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=slow-drain:120"]) as h:
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "paused"
        assert "calls still active on denver" in (h.run(name).pause_reason or "")
        assert h.applies("denver") == 0
        # The operator chooses to drop the remaining calls; the run goes on.
        h.services.control(name, "resume", "U0OPERATOR")
        assert h.drive(name) == "completed"
        assert h.sim.version_of("denver") == "10.0.0.4"


def test_licence_keys_pause_the_run_until_an_operator_confirms(database_url: str) -> None:
    with harness(database_url, faults=["lab=needs-keys"]) as h:
        name = h.plan(target="lab")
        # Installed and verified, then the package asks for new activation keys (manual step).
        assert h.drive(name) == "paused"
        assert h.sim.version_of("lab") == "10.1.0.1"
        assert "licence activation keys" in (h.run(name).pause_reason or "")
        assert h.steps(name)["licence_keys:lab"].status == "blocked"
        # The operator installs them in the DMA web UI and resumes: the run completes.
        h.sim.clear_faults("lab")
        h.services.control(name, "resume", "U0OPERATOR")
        assert h.drive(name) == "completed"
        assert h.applies("lab") == 1
