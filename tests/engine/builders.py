"""Small inventories for engine tests: the example supercluster `global` and a lab cluster."""

from __future__ import annotations

from dataclasses import replace

from bot.engine.planner import (
    ClusterFacts,
    PlanRequest,
    PlanTiming,
    Strategy,
    TerritoryFacts,
)

OLD = "10.0.0.3"
PATCH = "10.0.0.4"
MINOR = "10.1.0.1"

CLUSTERS = (
    ClusterFacts("dallas", servers=2, version=OLD, estimated_install_minutes=35),
    ClusterFacts("denver", servers=2, version=OLD, estimated_install_minutes=30),
    ClusterFacts("austin", servers=1, version=OLD, estimated_install_minutes=40),
)
TERRITORIES = (
    TerritoryFacts("t-americas", "Americas", primary="dallas", backup="denver",
                   conference_room_host=True),
    TerritoryFacts("t-mountain", "Mountain", primary="denver", backup="austin"),
    TerritoryFacts("t-texas", "Texas", primary="austin", backup="dallas"),
)


def supercluster(to_version: str = MINOR, strategy: Strategy = Strategy.AUTO,
                 clusters: tuple[ClusterFacts, ...] = CLUSTERS,
                 **changes: object) -> PlanRequest:
    """A plan request for the three-cluster supercluster `global`."""
    request = PlanRequest(target="global", target_kind="supercluster", clusters=clusters,
                          territories=TERRITORIES, to_version=to_version, strategy=strategy)
    return replace(request, **changes)  # type: ignore[arg-type]


def lab(to_version: str = MINOR, strategy: Strategy = Strategy.AUTO,
        **facts: object) -> PlanRequest:
    """A plan request for the stand-alone one-server cluster `lab`."""
    cluster = replace(ClusterFacts("lab", servers=1, version=OLD), **facts)  # type: ignore[arg-type]
    return PlanRequest(target="lab", target_kind="cluster", clusters=(cluster,), territories=(),
                       to_version=to_version, strategy=strategy)


def with_versions(*versions: str) -> tuple[ClusterFacts, ...]:
    """The three clusters, running the given versions."""
    return tuple(replace(c, version=v) for c, v in zip(CLUSTERS, versions, strict=True))


def timing(**changes: float) -> PlanTiming:
    """Default timing with some values changed."""
    return replace(PlanTiming(), **changes)  # type: ignore[arg-type]
