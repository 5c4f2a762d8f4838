"""The escalation packet against the simulator, for each of the vendor's three conditions, and the
overdue note that comes once before the "significantly longer" escalation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.engine.windows import Window
from storage import repo
from storage.db import unit_of_work
from tests.support.engine_harness import Harness, harness

pytestmark = pytest.mark.slow  # whole upgrades in virtual time

SHA1 = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"  # 10.0.0.4 in tests/fixtures/supercluster.yml
WORDS = {"cannot-log-in": "you still cannot log back in",
         "one-server": "shows only one server for a two-server cluster",
         "version-mismatch": "package version numbers on the two servers are not the same"}


def chicago_window(h: Harness) -> Window:
    # The harness clock starts at 22:00 UTC, 16:00 in Chicago.
    return Window(start=h.clock.now() - timedelta(minutes=30), duration=timedelta(hours=8),
                  tz="America/Chicago")


def packet_of(h: Harness, name: str) -> dict[str, Any]:
    with unit_of_work(h.sessions) as session:
        run = repo.get_run(session=session, ref=name)
        assert run is not None
        (escalation,) = repo.escalations_of(session=session, run_id=run.id)
        return dict(escalation.details["packet_view"])


@pytest.mark.parametrize(("fault", "condition"), [
    ("denver=never-returns", "cannot-log-in"),
    ("denver=one-server", "one-server"),
    ("denver=version-mismatch", "version-mismatch"),
])
def test_the_packet_has_what_polycom_asks_first(sqlite_url: str, fault: str,
                                                condition: str) -> None:
    with harness(sqlite_url, faults=[fault]) as h:
        name = h.plan(version="10.0.0.4", window=chicago_window(h))
        assert h.drive(name) == "escalated"
        packet = packet_of(h, name)
        (message,) = [m for m in h.sink.sent if "escalation on" in str(m.payload["text"])]
        text = str(message.payload["text"])

        # Posted in the thread and broadcast to the channel, with Acknowledge.
        assert message.thread and message.payload["reply_broadcast"] is True
        assert '"action_id": "escalation_ack"' in str(message.payload["blocks"]).replace("'", '"')

        # The vendor's words once, then what was measured.
        assert packet["condition"] == condition
        assert text.count(WORDS[condition]) == 1 and packet["facts"]
        assert all(WORDS[condition] not in fact for fact in packet["facts"])
        assert (h.run(name).pause_reason or "").count(WORDS[condition]) == 1

        # Cluster, versions, package and its SHA-1.
        assert (packet["cluster"], packet["from_version"], packet["to_version"]) == (
            "denver", "10.0.0.3", "10.0.0.4")
        assert f"10.0.0.4.bin, SHA-1 {SHA1}" in text

        # Each server: host name, address, state, version, serial.
        servers = {s["host"]: s for s in packet["servers"]}
        assert set(servers) == {"denver-a", "denver-b"}
        for server in servers.values():
            assert server["address"].startswith("192.0.2.") and server["serial"].startswith("SIM")
            assert f"({server['address']})" in text and server["serial"] in text
        if condition == "cannot-log-in":
            assert packet["servers_note"].startswith("not answering now")
            assert "as last read before the install" in packet["servers_note"]
        elif condition == "one-server":
            assert servers["denver-b"]["state"] == "DOWN"
        else:
            assert servers["denver-a"]["version"] != servers["denver-b"]["version"]

        # Absolute times in the run's zone, with the estimate and the time waited.
        sent, now = (datetime.fromisoformat(packet[k]) for k in ("install_sent", "now"))
        assert sent < now and packet["estimate_min"] == 30 and packet["waited_min"] > 30
        assert "Times (America/Chicago): install sent 2026-11-25 " in text
        assert " CST; last answer " in text and f"now {now:%Y}" in text

        # Every step already done on denver, in order (busy-out and drain included).
        done = [what for _, what in packet["done"]]
        assert [d.split()[0] for d in done[:4]] == ["Upload", "Busy", "Wait", "Install"]
        assert "Busy out denver" in text

        # The service impact now, and the ways on.
        impact = packet["impact"]
        assert impact["known"] and [c for c, _ in impact["out_of_service"]] == ["denver"]
        why = "not answering" if condition == "cannot-log-in" else "busied out"
        assert f"denver ({why})" in text
        for way in ("retry", "rollback R1 denver", "restore", "abort"):
            assert f"`/upgrade {way}" in text


def test_overdue_note_once_before_the_escalation(sqlite_url: str) -> None:
    with harness(sqlite_url, faults=["denver=never-returns"]) as h:
        name = h.plan(version="10.0.0.4")
        assert h.drive(name) == "escalated"
        texts = h.sink.texts()
        overdue = [i for i, t in enumerate(texts) if "past its" in t and "⏰" in t]
        escalation = next(i for i, t in enumerate(texts) if "escalation on" in t)
        # Denver's estimate is 30 min, the login grace 5: late after 35 min, escalated at 70.
        assert len(overdue) == 1 and overdue[0] < escalation
        assert texts[overdue[0]].startswith("⏰ R1 — denver is ")
        assert "past its 30 min estimate; escalation at 1 h 10 min" in texts[overdue[0]]
        # Meanwhile the board marked denver overdue.
        boards = [str(m.payload["text"]) for m in h.sink.sent[:escalation] if m.kind == "update"]
        assert any("denver: installing" in b and "OVERDUE" in b for b in boards)
        assert not any("OVERDUE" in b for b in boards[:1])

