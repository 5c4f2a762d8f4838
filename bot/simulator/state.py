"""The live state of the simulated clusters and superclusters, as plain mutable records."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.dma.models import Territory, UpgradeRecord
from bot.simulator.kinds import Fault, FaultKind

IN_SERVICE, BUSIED_OUT, OUT_OF_SERVICE = "IN_SERVICE", "BUSIED_OUT", "OUT_OF_SERVICE"
SERVICE_STATUSES = (IN_SERVICE, BUSIED_OUT, OUT_OF_SERVICE)
UPGRADE, ROLLBACK, JOIN, LEAVE = "UPGRADE", "ROLLBACK", "JOIN", "LEAVE"


class Refused(Exception):
    """A request the simulated DMA refuses: an HTTP status and the vendor rule that was broken."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Package:
    """An uploaded (or still downloading) upgrade package."""

    version: str
    sha1: str | None
    ready_at: datetime


@dataclass
class Operation:
    """A long operation: the API is unreachable from `restart_from` until `end`, then 401."""

    kind: str  # UPGRADE, ROLLBACK, JOIN, LEAVE
    start: datetime
    restart_from: datetime
    end: datetime
    user: str = ""
    to_version: str = ""
    target_sc: int | None = None  # JOIN: the supercluster being joined


@dataclass
class ScResult:
    """How the last supercluster operation of a cluster ended."""

    kind: str
    state: str  # COMPLETE or FAILED
    message: str


@dataclass
class ServerNode:
    """One server of a cluster."""

    state: str
    version: str


@dataclass
class ClusterState:
    """The live state of one simulated cluster."""

    name: str
    host_name: str
    servers: int
    version: str
    estimate: float
    registrations: int
    calls: int
    sc: int
    rng: random.Random
    nodes: list[ServerNode]
    rollback_version: str | None = None
    # Restored from the backup of its last upgrade and not joined since: its shared data is old,
    # so another cluster may not join it (the guide: join the rolled-back cluster to the other).
    rolled_back: bool = False
    package: Package | None = None
    history: list[UpgradeRecord] = field(default_factory=list)
    ha_connected: bool = True
    service: str = IN_SERVICE
    drain_from: datetime | None = None  # set while busied-out calls drain
    drain_span: timedelta = timedelta(0)
    op: Operation | None = None
    auth_until: datetime | None = None
    sc_result: ScResult | None = None
    faults: dict[FaultKind, Fault] = field(default_factory=dict)
    gate_count: int = 0  # alternates dropped connections and 503 during a restart

    def fault(self, kind: FaultKind) -> Fault | None:
        """Return the fault of that kind if set."""
        return self.faults.get(kind)


@dataclass
class Revision:
    """One version of a territory and when replication makes it visible."""

    visible_at: datetime
    territory: Territory


@dataclass
class ScState:
    """A supercluster (a stand-alone cluster is a supercluster of one) and its shared data."""

    key: int
    name: str
    members: list[str]
    territories: dict[str, list[Revision]]
