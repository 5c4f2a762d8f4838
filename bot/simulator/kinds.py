"""Inputs and records of the DMA simulator: clusters, superclusters, timings, faults, the log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from bot.engine.versions import InvalidVersion
from bot.engine.versions import compatible as versions_compatible

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class SimCluster:
    """The starting state of one simulated cluster."""

    name: str
    servers: int = 2
    version: str = "10.0.0.3"
    estimated_install_minutes: float = 35.0
    active_calls: int = 0
    registrations: int = 100
    host_name: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == "_sim":
            raise ValueError(f"cluster name {self.name!r} must be letters, digits, '.', '_' "
                             "or '-' (it becomes a URL path segment)")
        if self.servers not in (1, 2):
            raise ValueError(f"cluster {self.name}: servers must be 1 or 2, not {self.servers}")
        if self.host_name is None:
            self.host_name = f"dma-{self.name}.sim"


@dataclass
class SimTerritory:
    """The starting state of one territory."""

    territory_id: str
    name: str
    primary: str | None
    backup: str | None = None
    conference_room_host: bool = False


@dataclass
class SimSupercluster:
    """A supercluster at start: its member clusters and their shared territories."""

    name: str
    members: list[str]
    territories: list[SimTerritory] = field(default_factory=list)


@dataclass
class SimTimings:
    """Virtual durations of the simulated operations, before dividing by the speed factor."""

    upload_minutes: float = 2.0  # fetching a package after POST .../url
    auth_delay_minutes: float = 1.0  # answering 401 after a restart before 200
    leave_minutes: float = 4.0
    join_minutes: float = 8.0
    drain_minutes: float = 3.0  # a busied-out cluster's calls end over this time
    replication_seconds: float = 20.0  # a territory change becomes visible after this
    rollback_minutes: float = 5.0  # the guide: "it restarts (about five minutes)"


class FaultKind(StrEnum):
    """What can go wrong with a simulated cluster."""

    NEVER_RETURNS = "never-returns"
    ONE_SERVER = "one-server"
    VERSION_MISMATCH = "version-mismatch"
    SLOW_INSTALL = "slow-install"
    FLAKY = "flaky"
    JOIN_FAILS = "join-fails"
    SLOW_DRAIN = "slow-drain"
    LINK_DOWN = "link-down"
    HISTORY_FAILURE = "history-failure"
    # Not a failure: the installed package needs new licence activation keys (guide, basic
    # step 6) until the fault is cleared, as an operator installing the keys would.
    NEEDS_KEYS = "needs-keys"
    # Now, not after an install: the second server is down; the Dashboard shows an alert; the
    # supercluster's check-compatibility answers "not compatible" whatever the versions.
    SERVER_DOWN = "server-down"
    ALERT = "alert"
    SAYS_INCOMPATIBLE = "says-incompatible"
    # The cluster restarts after an install request but both servers stay on the old version.
    INSTALL_NOT_TAKEN = "install-not-taken"
    # What goes wrong when a rollback (not an install) finishes: the vendor's conditions 2 and 3
    # apply to a rollback exactly as to an install. never-returns hangs a rollback as well.
    ROLLBACK_ONE_SERVER = "rollback-one-server"
    ROLLBACK_VERSION_MISMATCH = "rollback-version-mismatch"


# "both" is 503 or drop; "hang" leaves the request without an answer until the client times out.
FLAKY_MODES = ("503", "drop", "both", "hang")


@dataclass(frozen=True)
class Fault:
    """One injected fault; only the parameter of its kind matters."""

    kind: FaultKind
    factor: float = 3.0  # slow-install: the install takes factor x the estimate
    probability: float = 0.3  # flaky: chance that a request fails
    mode: str = "both"  # flaky: one of FLAKY_MODES
    minutes: float = 60.0  # slow-drain: time for busied-out calls to end

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.factor <= 0:
            raise ValueError(f"slow-install factor must be positive, not {self.factor}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"flaky probability must be between 0 and 1, not {self.probability}")
        if self.mode not in FLAKY_MODES:
            raise ValueError(f"flaky mode must be one of {', '.join(FLAKY_MODES)}, "
                             f"not {self.mode!r}")
        if self.minutes < 0:
            raise ValueError(f"slow-drain minutes must not be negative, not {self.minutes}")


# What each fault does, as `rehearse --help` and `simulate --help` list them.
FAULT_HELP: Mapping[FaultKind, str] = MappingProxyType({
    FaultKind.NEVER_RETURNS: "the cluster never comes back after the install (escalation)",
    FaultKind.ONE_SERVER: "only one of two servers comes back (escalation)",
    FaultKind.VERSION_MISMATCH: "the servers come back on different versions (escalation)",
    FaultKind.SLOW_INSTALL: "slow-install[:factor]: the install takes factor times longer "
                            "(default 3)",
    FaultKind.FLAKY: "flaky[:p[:mode]]: requests fail with probability p; mode 503, drop, "
                     "both or hang",
    FaultKind.JOIN_FAILS: "joining the supercluster fails (escalation)",
    FaultKind.SLOW_DRAIN: "slow-drain[:minutes]: calls take that long to end after busy-out "
                          "(default 60)",
    FaultKind.LINK_DOWN: "the private link between the servers stays down after the install",
    FaultKind.HISTORY_FAILURE: "the operation history reports the install as failed",
    FaultKind.NEEDS_KEYS: "the package needs licence keys: the run pauses until resumed",
    FaultKind.SERVER_DOWN: "the second server is down now (not after an install)",
    FaultKind.ALERT: "the Dashboard shows an alert now",
    FaultKind.SAYS_INCOMPATIBLE: "check-compatibility answers not compatible, whatever the "
                                 "versions",
    FaultKind.INSTALL_NOT_TAKEN: "the cluster restarts but both servers stay on the old version",
    FaultKind.ROLLBACK_ONE_SERVER: "only one server comes back after a rollback",
    FaultKind.ROLLBACK_VERSION_MISMATCH: "the servers come back on different versions after a "
                                         "rollback",
})


def fault_help() -> str:
    """Every fault kind (with its parameters) and what it does, one per line."""
    lines = []
    for kind in FaultKind:
        text = FAULT_HELP[kind]
        syntax, desc = (text.split(": ", 1) if text.startswith(f"{kind.value}[")
                        else (kind.value, text))
        lines.append(f"  {syntax:<22} {desc}")
    return "\n".join(lines)


def _valid_kinds() -> str:
    return ", ".join(k.value for k in FaultKind)


def parse_fault(text: str) -> tuple[str, Fault]:
    """Parse `CLUSTER=KIND[:PARAM[:MODE]]`, e.g. `dallas=slow-install:4` or `denver=flaky:0.2`."""
    usage = (f"expected CLUSTER=KIND[:PARAM], e.g. dallas=slow-install:4; "
             f"valid kinds: {_valid_kinds()}")
    cluster, sep, spec = text.partition("=")
    if not sep or not cluster.strip() or not spec.strip():
        raise ValueError(f"bad fault {text!r}: {usage}")
    kind_text, *params = spec.strip().split(":")
    try:
        kind = FaultKind(kind_text.strip())
    except ValueError:
        raise ValueError(f"unknown fault kind {kind_text!r} in {text!r}; "
                         f"valid kinds: {_valid_kinds()}") from None
    return cluster.strip(), _fault_with_params(kind, [p.strip() for p in params], text)


def _fault_with_params(kind: FaultKind, params: list[str], text: str) -> Fault:
    allowed = {FaultKind.SLOW_INSTALL: 1, FaultKind.FLAKY: 2, FaultKind.SLOW_DRAIN: 1}
    if len(params) > allowed.get(kind, 0):
        raise ValueError(f"fault {text!r}: {kind.value} takes "
                         f"{allowed.get(kind, 0) or 'no'} parameter(s)")
    if not params:
        return Fault(kind)
    try:
        number = float(params[0])
    except ValueError:
        raise ValueError(f"fault {text!r}: {params[0]!r} is not a number") from None
    if kind is FaultKind.SLOW_INSTALL:
        return Fault(kind, factor=number)
    if kind is FaultKind.SLOW_DRAIN:
        return Fault(kind, minutes=number)
    return Fault(kind, probability=number, mode=params[1] if len(params) > 1 else "both")


@dataclass(frozen=True)
class RequestRecord:
    """One request a simulated cluster received, and how it was answered."""

    at: datetime
    cluster: str
    method: str
    path: str  # relative to the cluster's /api/rest, without the query string
    status: int | None  # None: the connection was dropped
    body: Any  # the request body: parsed JSON, a short description of bytes, or None
    query: str = ""

    def to_json(self) -> dict[str, Any]:
        """Render for the admin endpoint."""
        return {"at": self.at.isoformat(), "cluster": self.cluster, "method": self.method,
                "path": self.path, "query": self.query, "status": self.status,
                "body": self.body}


def compatible(a: str, b: str) -> bool:
    """Two versions are compatible exactly when MAJOR and MINOR are equal (the product's rule)."""
    try:
        return versions_compatible(a, b)
    except InvalidVersion:
        return a == b
