"""`retry` after a manual rollback: says so, offers reinstall or restore, never re-escalates."""

from __future__ import annotations

import pytest

from tests.support.engine_harness import harness

pytestmark = pytest.mark.slow  # a whole full-outage run in virtual time

OPERATOR = "U0OPERATOR"


def test_retry_after_a_manual_rollback_offers_to_upgrade_again(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=one-server"]) as h:
        name = h.plan(strategy="full-outage")
        assert h.drive(name) == "escalated"
        assert h.escalations(name) == [("denver", "one-server")]

        # An operator rolls denver back by hand (it is stand-alone: the run removed it), and
        # the failed server is repaired.
        h.sim.clear_faults("denver")
        h.services.clients("denver").rollback()
        h.clock.advance(7 * 60)
        assert h.sim.version_of("denver") == "10.0.0.3"

        # retry says what it found and offers the ways on; nothing is verified, nothing escalates.
        seen = len(h.sim.requests)
        text = h.services.control(name, "retry", OPERATOR)
        assert "denver runs 10.0.0.3 again" in text
        assert f"/upgrade retry {name} reinstall" in text and f"/upgrade restore {name}" in text
        assert h.run(name).status == "escalated"
        assert h.mutations_after(seen) == []
        for _ in range(5):
            h.clock.advance(600)
            h.worker.tick()
        h.outbox.deliver()
        # One escalation packet; the rest are reminders of it (nobody acknowledged).
        assert sum(t.startswith("🚨") and "escalation on" in t for t in h.sink.texts()) == 1

        # reinstall continues the run: upload and install on denver again, verify, go on.
        assert "upgrading denver again" in h.services.control(name, "reinstall", OPERATOR)
        assert h.drive(name) == "completed"
        assert h.sim.version_of("denver") == "10.1.0.1"
        assert h.applies("denver") == 2
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
