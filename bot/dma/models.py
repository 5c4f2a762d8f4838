"""Typed views of the DMA REST representations (dma-api.md), and the one place that names fields.

Fields marked ASSUMED in dma-api.md are read here and nowhere else, so a site with a real DMA can
correct a field name in this file only. Parsing is strict about types and says what was expected.
The simulator renders its answers with the `to_json` methods, so both sides share one spelling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.dma.errors import DmaBadResponse
from bot.dma.fields import field_of as _get
from bot.dma.fields import list_of as _list
from bot.dma.fields import number_of as _number
from bot.dma.fields import time_of as _parse_time

MEDIA_TYPES: dict[str, str] = {
    "installed-software": "application/vnd.plcm.plcm-software-upgrade-details+json",
    "high-availability": "application/vnd.plcm.plcm-high-availability-status+json",
    "supercluster": "application/vnd.plcm.plcm-dma-supercluster+json",
    "supercluster-operation": "application/vnd.plcm.plcm-dma-supercluster-operation-status+json",
    "territory": "application/vnd.plcm.plcm-territory+json",
    "status": "application/vnd.plcm.plcm-status+json",
    "error": "application/vnd.plcm.plcm-error+json",
}

# ASSUMED fields (dma-api.md): keep their spelling here only.
F_ESTIMATE = "estimatedInstallMinutes"
F_PACKAGE_VERSION = "packageVersion"
F_ACTIVE_NODE = "activeNodeIdentifier"
F_NODE_ADDRESS = "ipAddress"  # a server's management address (escalation packet)
F_NODE_SERIAL = "serialNumber"  # a server's system serial number (escalation packet)
PATH_OPERATION_STATUS = "/dma-supercluster/operation-status"
PATH_COMPATIBILITY = "/dma-supercluster/check-compatibility"
PATH_STATUS = "/status"

# An install estimate above this is not believed (a day: the vendor speaks of about an hour).
MAX_ESTIMATE_MINUTES = 24 * 60.0

SUCCESS_STATUSES = frozenset({"SUCCESSFUL", "UPGRADE_SUCCESSFUL", "ROLLBACK_SUCCESSFUL"})
FAILURE_STATUSES = frozenset({"GENERAL_FAILURE", "UPGRADE_FAILURE", "ROLLBACK_FAILURE"})


@dataclass(frozen=True)
class UpgradeRecord:
    """One row of the operation history: one server, one operation."""

    server: int
    from_version: str | None
    to_version: str | None
    user_name: str | None
    status: str
    date: datetime | None

    @property
    def succeeded(self) -> bool:
        """True when the operation ended successfully."""
        return self.status in SUCCESS_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpgradeRecord:
        """Parse one `upgradeHistory` row."""
        what = "upgradeHistory row"
        return cls(
            server=_get(data, "server", int, what),
            from_version=_get(data, "fromVersion", str, what, optional=True),
            to_version=_get(data, "toVersion", str, what, optional=True),
            user_name=_get(data, "userName", str, what, optional=True),
            status=_get(data, "upgradeStatus", str, what),
            date=_parse_time(_get(data, "date", str, what, optional=True), what),
        )

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"server": self.server, "fromVersion": self.from_version,
                "toVersion": self.to_version, "userName": self.user_name,
                "upgradeStatus": self.status,
                "date": self.date.isoformat().replace("+00:00", "Z") if self.date else None}


@dataclass(frozen=True)
class InstalledSoftware:
    """`GET /installed-software`: what runs, what is uploaded, the estimate, the history."""

    system_version: str
    rollback_version: str | None = None
    upgrade_version: str | None = None
    sha1: str | None = None
    restart_required: bool = False
    activation_key_required: bool = False
    estimated_install_minutes: float | None = None
    history: tuple[UpgradeRecord, ...] = ()
    entity_tag: str | None = None

    def latest_for_server(self, server: int) -> UpgradeRecord | None:
        """Return the newest history row of one server (by date, then by position)."""
        rows = [(r.date.timestamp() if r.date else 0.0, i, r)
                for i, r in enumerate(self.history) if r.server == server]
        return max(rows, key=lambda t: (t[0], t[1]))[2] if rows else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *,
                  max_estimate_minutes: float = MAX_ESTIMATE_MINUTES) -> InstalledSoftware:
        """Parse the representation; an implausible install estimate is a bad answer."""
        what = "installed-software"
        estimate = _number(data, F_ESTIMATE, what, minutes_up_to=max_estimate_minutes)
        return cls(
            system_version=_get(data, "systemVersion", str, what),
            rollback_version=_get(data, "rollBackVersion", str, what, optional=True),
            upgrade_version=_get(data, "upgradeVersion", str, what, optional=True),
            sha1=_get(data, "sha1", str, what, optional=True),
            restart_required=bool(_get(data, "restartRequired", bool, what, optional=True)),
            activation_key_required=bool(
                _get(data, "activationKeyRequired", bool, what, optional=True)),
            estimated_install_minutes=estimate,
            history=tuple(UpgradeRecord.from_json(r) for r in _list(data, "upgradeHistory", what)),
            entity_tag=_get(data, "entityTag", str, what, optional=True),
        )

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"systemVersion": self.system_version, "rollBackVersion": self.rollback_version,
                "upgradeVersion": self.upgrade_version, "sha1": self.sha1,
                "restartRequired": self.restart_required,
                "activationKeyRequired": self.activation_key_required,
                F_ESTIMATE: self.estimated_install_minutes,
                "upgradeHistory": [r.to_json() for r in self.history],
                "entityTag": self.entity_tag}


@dataclass(frozen=True)
class Node:
    """One server of a cluster as the high-availability status shows it."""

    node_id: int
    host_name: str
    state: str  # UP, DOWN, STARTING
    package_version: str | None
    address: str | None = None  # ASSUMED field
    serial: str | None = None  # ASSUMED field

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Node:
        """Parse one `nodeStateList` row."""
        what = "nodeStateList row"
        state = _get(data, "state", str, what)
        if state not in ("UP", "DOWN", "STARTING"):
            raise DmaBadResponse(f"{what}: state should be UP, DOWN or STARTING, got {state!r}")
        return cls(node_id=_get(data, "nodeId", int, what),
                   host_name=_get(data, "hostName", str, what, optional=True) or "",
                   state=state,
                   package_version=_get(data, F_PACKAGE_VERSION, str, what, optional=True),
                   address=_get(data, F_NODE_ADDRESS, str, what, optional=True),
                   serial=_get(data, F_NODE_SERIAL, str, what, optional=True))

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        body: dict[str, Any] = {"nodeId": self.node_id, "hostName": self.host_name,
                                "state": self.state, F_PACKAGE_VERSION: self.package_version}
        if self.address is not None:
            body[F_NODE_ADDRESS] = self.address
        if self.serial is not None:
            body[F_NODE_SERIAL] = self.serial
        return body


@dataclass(frozen=True)
class HaStatus:
    """`GET /high-availability/status`: the Dashboard's servers and the private link."""

    ha_active: bool
    ha_connected: bool
    our_id: int | None
    nodes: tuple[Node, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HaStatus:
        """Parse the representation."""
        what = "high-availability status"
        return cls(ha_active=_get(data, "haActive", bool, what),
                   ha_connected=bool(_get(data, "haConnected", bool, what, optional=True)),
                   our_id=_get(data, "ourId", int, what, optional=True),
                   nodes=tuple(Node.from_json(n) for n in _list(data, "nodeStateList", what)))

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"haActive": self.ha_active, "haConnected": self.ha_connected,
                "ourId": self.our_id, "nodeStateList": [n.to_json() for n in self.nodes]}


@dataclass(frozen=True)
class Member:
    """One cluster in `GET /dma-supercluster`."""

    cluster_id: str
    host_name: str
    status: str  # SUPERCLUSTERED, STANDALONE, JOINING, LEAVING
    service_status: str  # IN_SERVICE, BUSIED_OUT, OUT_OF_SERVICE
    version: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Member:
        """Parse one `clusters` row."""
        what = "dma-supercluster cluster"
        return cls(cluster_id=_get(data, "clusterId", str, what),
                   host_name=_get(data, "hostName", str, what),
                   status=_get(data, "status", str, what),
                   service_status=_get(data, "serviceStatus", str, what),
                   version=_get(data, "version", str, what))

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"clusterId": self.cluster_id, "hostName": self.host_name, "status": self.status,
                "serviceStatus": self.service_status, "version": self.version}


@dataclass(frozen=True)
class SuperclusterView:
    """`GET /dma-supercluster`: the members as seen from one cluster, and warnings."""

    clusters: tuple[Member, ...]
    warnings: tuple[str, ...] = ()

    def member(self, cluster_id: str) -> Member | None:
        """Return the named cluster if listed."""
        return next((m for m in self.clusters if m.cluster_id == cluster_id), None)

    @property
    def ids(self) -> frozenset[str]:
        """The listed cluster ids."""
        return frozenset(m.cluster_id for m in self.clusters)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuperclusterView:
        """Parse the representation."""
        what = "dma-supercluster"
        warnings = _list(data, "warnings", what)
        return cls(clusters=tuple(Member.from_json(c) for c in _list(data, "clusters", what)),
                   warnings=tuple(str(w) for w in warnings))

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"clusters": [c.to_json() for c in self.clusters], "warnings": list(self.warnings)}


@dataclass(frozen=True)
class Compatibility:
    """`GET /dma-supercluster/check-compatibility` (ASSUMED)."""

    compatible: bool
    message: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Compatibility:
        """Parse the representation."""
        what = "check-compatibility"
        return cls(compatible=_get(data, "compatible", bool, what),
                   message=_get(data, "message", str, what, optional=True) or "")

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"compatible": self.compatible, "message": self.message}


@dataclass(frozen=True)
class OperationStatus:
    """A long operation's progress: the 202 body of apply, or the supercluster operation status."""

    operation_type: str
    percentage_complete: int
    state: str | None = None  # IN_PROGRESS, COMPLETE, FAILED (supercluster operations)
    message: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationStatus:
        """Parse the representation."""
        what = "operation status"
        return cls(operation_type=_get(data, "operationType", str, what),
                   percentage_complete=int(_number(data, "percentageComplete", what) or 0),
                   state=_get(data, "state", str, what, optional=True),
                   message=_get(data, "message", str, what, optional=True) or "")

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        body: dict[str, Any] = {"operationType": self.operation_type,
                                "percentageComplete": self.percentage_complete,
                                "message": self.message}
        if self.state is not None:
            body["state"] = self.state
        return body


@dataclass(frozen=True)
class Territory:
    """One territory: its primary, backup and (ASSUMED) active cluster."""

    territory_id: str
    name: str
    primary: str | None
    backup: str | None
    active: str | None = None
    conference_room_host: bool = False
    entity_tag: str | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Territory:
        """Parse one territory, keeping unknown fields so a PUT sends the whole territory back."""
        what = "territory"
        known = {"territoryIdentifier", "name", "primaryNodeIdentifier", "backupNodeIdentifier",
                 F_ACTIVE_NODE, "conferenceRoomHost", "entityTag"}
        return cls(
            territory_id=_get(data, "territoryIdentifier", str, what),
            name=_get(data, "name", str, what, optional=True) or "",
            primary=_get(data, "primaryNodeIdentifier", str, what, optional=True),
            backup=_get(data, "backupNodeIdentifier", str, what, optional=True),
            active=_get(data, F_ACTIVE_NODE, str, what, optional=True),
            conference_room_host=bool(_get(data, "conferenceRoomHost", bool, what, optional=True)),
            entity_tag=_get(data, "entityTag", str, what, optional=True),
            extra=tuple(sorted((k, v) for k, v in data.items() if k not in known)),
        )

    def to_json(self) -> dict[str, Any]:
        """Render the whole territory (the PUT body)."""
        body = dict(self.extra)
        body.update({"territoryIdentifier": self.territory_id, "name": self.name,
                     "primaryNodeIdentifier": self.primary, "backupNodeIdentifier": self.backup,
                     F_ACTIVE_NODE: self.active, "conferenceRoomHost": self.conference_room_host,
                     "entityTag": self.entity_tag})
        return body


def parse_territories(data: Mapping[str, Any]) -> tuple[Territory, ...]:
    """Parse `GET /territories`."""
    return tuple(Territory.from_json(t) for t in _list(data, "territories", "territories"))


@dataclass(frozen=True)
class ClusterStatus:
    """`GET /status` (ASSUMED): calls, registrations and alerts of the Dashboard."""

    active_calls: int
    registrations: int = 0
    alerts: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClusterStatus:
        """Parse the representation."""
        what = "status"
        return cls(active_calls=_get(data, "activeCalls", int, what),
                   registrations=_get(data, "registrations", int, what, optional=True) or 0,
                   alerts=tuple(str(a) for a in _list(data, "alerts", what)))

    def to_json(self) -> dict[str, Any]:
        """Render as the API does."""
        return {"activeCalls": self.active_calls, "registrations": self.registrations,
                "alerts": list(self.alerts)}
