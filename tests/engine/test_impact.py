"""Service impact, overdue arithmetic, covered time: the pure parts of the packet and board."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from bot.engine.impact import ServiceImpact, service_impact
from bot.engine.plans import TerritoryFacts
from bot.engine.recovery import ClusterNow, ScView
from bot.engine.verification import overdue
from bot.engine.windows import covered_seconds

T0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def cluster(name: str, service: str | None = "IN_SERVICE", *, members: tuple[str, ...] = (),
            reachable: bool = True) -> ClusterNow:
    return ClusterNow(name=name, servers=2, reachable=reachable, version="10.0.0.3",
                      servers_up=2 if reachable else 0, members=members or (name,),
                      service=service if reachable else None)


PAIR = ("dallas", "denver")


def test_impact_names_clusters_out_of_service_alone_and_unmanaged_territories() -> None:
    clusters = [cluster("dallas", members=PAIR), cluster("denver", "BUSIED_OUT", members=PAIR),
                cluster("austin", "OUT_OF_SERVICE"), cluster("lab", reachable=False)]
    views = [ScView(PAIR, (TerritoryFacts("t1", "Americas", "dallas", "denver"),
                           TerritoryFacts("t2", "West", "denver", "austin"))),
             ScView(("austin",), (TerritoryFacts("t3", "South", "austin", None),))]
    impact = service_impact(clusters, views)
    assert impact.out_of_service == (("denver", "busied out"), ("austin", "out of service"),
                                     ("lab", "not answering"))
    assert impact.unreachable == ("lab",)
    # A cluster that does not answer is not called stand-alone: nobody knows.
    assert impact.standalone == ("austin",)
    # West: its primary is busied out and its backup is in another supercluster.
    assert impact.unmanaged == ("South", "West")
    assert ServiceImpact.from_json(impact.to_json()) == impact
    assert impact.lines() == [
        "Out of service: denver (busied out), austin, lab (not answering)",
        "Stand-alone (not in a supercluster): austin",
        "Territories with no in-service manager: South, West"]


def test_stand_alone_is_no_impact_for_a_stand_alone_target() -> None:
    alone = [cluster("lab", "BUSIED_OUT")]
    assert service_impact(alone, [], superclustered=False).standalone == ()
    assert service_impact(alone, [], superclustered=True).standalone == ("lab",)
    # ...unless some cluster of the run is in a supercluster.
    mixed = [*alone, cluster("dallas", members=PAIR)]
    assert service_impact(mixed, [], superclustered=False).standalone == ("lab",)


def test_impact_is_unknown_when_no_cluster_answered() -> None:
    impact = service_impact([cluster("dallas", reachable=False)], [])
    assert not impact.known
    assert impact.lines() == ["unknown: no cluster of the target answered (dallas)"]
    assert ServiceImpact.from_json(impact.to_json()) == impact
    assert ServiceImpact.from_json(None) == ServiceImpact(known=False)
    assert ServiceImpact(known=False).lines() == ["unknown: it could not be read"]


class OverdueArgs(TypedDict):
    """`overdue`'s arguments other than `now`."""

    applied_at: datetime
    estimate_s: float
    login_grace_s: float
    factor: float


def test_overdue_starts_after_estimate_plus_grace_and_says_when_escalation_comes() -> None:
    args: OverdueArgs = {"applied_at": T0, "estimate_s": 30 * 60.0, "login_grace_s": 5 * 60.0,
                         "factor": 2.0}
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
