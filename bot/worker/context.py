"""Everything a step handler may read: a snapshot taken before the step visits its cluster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.config import ClusterSpec, PackageSpec, TimingSettings
from bot.dma.client import DmaClient
from bot.engine.planner import Plan


@dataclass(frozen=True)
class StepContext:
    """One visit of one step: its stored state, the plan, and a way to reach the clusters."""

    now: datetime
    run_name: str
    to_version: str
    key: str
    kind: str
    cluster: str | None
    params: dict[str, Any]
    data: dict[str, Any]
    phase: str | None
    estimate_s: float
    started_at: datetime | None
    plan: Plan
    timing: TimingSettings
    inventory: Mapping[str, ClusterSpec]
    package: PackageSpec | None
    client_for: Callable[[str], DmaClient]
    snapshot: list[dict[str, Any]] = field(default_factory=list)
    step_data: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    def client(self, cluster: str | None = None) -> DmaClient:
        """Return the client of a cluster (this step's cluster by default)."""
        name = cluster or self.cluster
        if name is None:
            raise ValueError(f"step {self.key} names no cluster")
        return self.client_for(name)

    def poll(self, cluster: str | None = None) -> DmaClient:
        """The client of a cluster for a poll: one attempt per request (the step polls again)."""
        return self.client(cluster).single_attempt()

    @property
    def poll_s(self) -> float:
        """Seconds between two looks at a cluster that is busy."""
        return self.timing.poll_interval.total_seconds()

    def elapsed_s(self) -> float:
        """Seconds since the step started, or since an operator's retry restarted its clock."""
        moments = [self.started_at] if self.started_at else []
        if self.data.get("retry_at"):
            moments.append(datetime.fromisoformat(self.data["retry_at"]))
        return (self.now - max(moments)).total_seconds() if moments else 0.0

    def since(self, key: str) -> float | None:
        """Seconds since the time stored under `key` in this step's data, if any."""
        value = self.data.get(key)
        return (self.now - datetime.fromisoformat(value)).total_seconds() if value else None

    def stamp(self) -> str:
        """The current time as stored in step data."""
        return self.now.isoformat()

    def servers(self, cluster: str | None = None) -> int:
        """How many servers the inventory lists for a cluster."""
        return self.inventory[cluster or self.cluster or ""].servers

    def seconds(self, delta: timedelta) -> float:
        """A duration setting in seconds."""
        return delta.total_seconds()
