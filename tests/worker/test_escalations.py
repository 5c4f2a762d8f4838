"""The vendor's three escalation conditions stop the run, name the condition, touch nothing more."""

from __future__ import annotations

import pytest

from tests.support.engine_harness import harness

pytestmark = pytest.mark.slow  # whole upgrades in virtual time

CASES = [
    ("denver=never-returns", "cannot-log-in", "still cannot log back in"),
    ("denver=one-server", "one-server", "only one server"),
    ("denver=version-mismatch", "version-mismatch", "not the same"),
]


@pytest.mark.parametrize(("fault", "condition", "words"), CASES)
def test_condition_escalates_and_pauses(sqlite_url: str, fault: str, condition: str,
                                        words: str) -> None:
    with harness(sqlite_url, faults=[fault]) as h:
        # A patch upgrade, cluster by cluster: dallas first, then denver misbehaves.
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "escalated"
        seen = len(h.sim.requests)

        # The escalation names the vendor's condition, the cluster, and whom to call.
        text = next(t for t in h.sink.texts() if "escalation on" in t)
        assert "*denver*" in text and "Polycom Global Services" in text
        assert words in text and "<!subteam^S0ONCALL>" in text
        assert h.run(name).pause_reason
        escalated = [s for s in h.steps(name).values() if s.status == "escalated"]
        assert len(escalated) == 1 and escalated[0].cluster == "denver"

        # Nothing else is touched: austin was never busied out nor installed, and hours later
        # the bot still sends no state-changing request anywhere.
        assert h.applies("austin") == 0 and h.sim.version_of("austin") == "10.0.0.3"
        for _ in range(20):
            h.clock.advance(600)
            h.worker.tick()
        assert h.mutations_after(seen) == []
        assert h.run(name).status == "escalated"
        assert h.escalations(name) == [("denver", condition)]


def test_escalation_details_and_retry(database_url: str) -> None:
    with harness(database_url, faults=["denver=one-server"]) as h:
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "escalated"
        text = next(t for t in h.sink.texts() if "escalation on" in t)
        # Each server's state and version, and what was already done.
        assert "server 1" in text and "server 2" in text and "DOWN" in text
        assert "Already done" in text and "/upgrade retry" in text

        # The second server comes back; an operator asks to verify again and the run goes on.
        h.sim.clear_faults("denver")
        h.services.control(name, "retry", "U0OPERATOR")
        assert h.drive(name) == "completed"
        assert h.applies("denver") == 1
        # Denver came back within its estimate: no overdue note at any point.
        assert not any("past its" in t for t in h.sink.texts())


def test_failed_join_escalates_and_retry_sends_the_join_again(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=join-fails"]) as h:
        name = h.plan(strategy="full-outage")
        assert h.drive(name) == "escalated"
        assert h.escalations(name) == [("denver", "join-failed")]
        # Austin waits: joins go one at a time, and nothing moves past an escalation.
        assert "austin" not in h.sim.members_of("dallas")
        h.sim.clear_faults("denver")
        h.services.control(name, "retry", "U0OPERATOR")
        assert h.drive(name) == "completed"
        assert sorted(h.sim.members_of("dallas")) == ["austin", "dallas", "denver"]
