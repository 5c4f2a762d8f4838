"""Service impact, overdue arithmetic, covered time: the pure parts of the packet and board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.dma.models import Member, SuperclusterView, Territory
from bot.engine.impact import ServiceImpact, service_impact
from bot.engine.verification import overdue
from bot.engine.windows import covered_seconds

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def member(name: str, status: str = "SUPERCLUSTERED", service: str = "IN_SERVICE") -> Member:
    return Member(name, f"dma-{name}.example.com", status, service, "10.0.0.3")


def test_impact_names_clusters_out_of_service_alone_and_unserved_territories() -> None:
    view = SuperclusterView((member("dallas"), member("denver", service="BUSIED_OUT"),
                             member("austin", "STANDALONE", "OUT_OF_SERVICE")))
    territories = (Territory("t1", "Americas", "dallas", "denver", active="dallas"),
                   Territory("t2", "West", "denver", "austin", active="denver"),
                   Territory("t3", "South", "austin", None, active=None))
    impact = service_impact(clusters=["dallas", "denver", "austin", "lab"], view=view,
                            territories=territories, silent={"lab"}, superclustered=True)
    assert impact.out_of_service == (("denver", "busied out"), ("austin", "out of service"),
                                     ("lab", "not answering"))
    assert impact.standalone == ("austin", "lab")
    assert impact.unserved == ("West", "South")
    assert ServiceImpact.from_json(impact.to_json()) == impact
    assert impact.lines()[2] == "Territories with no in-service manager: West, South"


def test_impact_is_unknown_when_no_cluster_answered() -> None:
    impact = service_impact(clusters=["dallas"], view=None, territories=(), silent={"dallas"},
                            superclustered=True)
    assert not impact.known and impact.lines() == ["unknown: no cluster of the target answered"]
    assert ServiceImpact.from_json(None) == ServiceImpact(known=False)


def test_overdue_starts_after_estimate_plus_grace_and_says_when_escalation_comes() -> None:
    args = {"applied_at": T0, "estimate_s": 30 * 60.0, "login_grace_s": 5 * 60.0, "factor": 2.0}
    assert overdue(now=T0 + timedelta(minutes=35), **args) is None
    late = overdue(now=T0 + timedelta(minutes=42), **args)
    assert late == {"waited_min": 42.0, "estimate_min": 30.0, "past_min": 12.0,
                    "escalate_at_min": 70.0}


def test_covered_time_counts_overlaps_once_and_open_spans_until_now() -> None:
    now = T0 + timedelta(hours=3)
    spans = [(T0, T0 + timedelta(hours=1)), (T0 + timedelta(minutes=30), T0 + timedelta(hours=2)),
             (T0 + timedelta(hours=2, minutes=30), None)]
    assert covered_seconds(spans, now) == (2 * 60 + 30) * 60
    assert covered_seconds([], now) == 0
