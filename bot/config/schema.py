"""The configuration file's shape: one frozen pydantic model per section, and `Settings` whole.

Values are checked by the types of fields.py; checks that span sections by consistency.py, run
here too so that a Settings built in code (a rehearsal, a test) is just as honest as a file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.config.consistency import consistency_problems
from bot.config.fields import (
    ApiUrl,
    CaBundle,
    Duration,
    Name,
    PackageUrl,
    Port,
    PositiveDuration,
    Reaction,
    Sha1,
    SlackChannel,
    SlackPrincipal,
    Version,
)
from bot.config.problems import UnknownTarget, field_problem, inconsistent
from bot.engine.durations import spell_duration


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # `timing:` with every key commented out reads as None: treat it as "use the defaults".
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {k: v for k, v in data.items()
                if not (v is None and k in fields and not fields[k].is_required()
                        and fields[k].default is not None)}


class ClusterSpec(_Model):
    """One DMA cluster: its management API and how many servers it has."""

    name: Name
    api_url: ApiUrl
    servers: Literal[1, 2] = 2
    verify_tls: bool | None = None
    ca_bundle: CaBundle | None = None
    fqdn: str | None = None
    port: Port | None = None

    @model_validator(mode="before")
    @classmethod
    def _address_from_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("api_url"), str):
            return data
        parts = urlsplit(data["api_url"])
        try:
            port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
        except ValueError:
            port = None  # the api_url check reports it
        filled = dict(data)
        if filled.get("fqdn") is None and parts.hostname:
            filled["fqdn"] = parts.hostname
        if filled.get("port") is None and port is not None:
            filled["port"] = port
        return filled

    @model_validator(mode="after")
    def _bundle_needs_verification(self) -> ClusterSpec:
        if self.verify_tls is False and self.ca_bundle is not None:
            raise field_problem("ca_bundle", "a CA bundle is only used when verify_tls is true; "
                                              "remove one of the two")
        return self


class SuperclusterSpec(_Model):
    """A supercluster: one to five peer clusters sharing one data store."""

    name: Name
    clusters: list[ClusterSpec]
    # Cluster A of a full outage (the one the others join); by default the one ready first.
    seed: Name | None = None

    @model_validator(mode="after")
    def _size(self) -> SuperclusterSpec:
        if not 1 <= len(self.clusters) <= 5:
            raise field_problem("clusters", "a supercluster has 1 to 5 clusters (the DMA's "
                                             f"limit), got {len(self.clusters)}")
        names = [c.name for c in self.clusters]
        if self.seed is not None and self.seed not in names:
            raise field_problem("seed", f"must be one of this supercluster's clusters "
                                        f"({', '.join(names)}), got {self.seed!r}")
        return self


class SlackSettings(_Model):
    """Where the bot posts and who may do what."""

    channel: SlackChannel | None = None
    operators: list[SlackPrincipal] = []
    approvers: list[SlackPrincipal] = []
    approvals_required: Annotated[int, Field(ge=1)] = 2
    # Rollback and restore plans (DESIGN.md, "Recovery"): never the requester either.
    recovery_approvals_required: Annotated[int, Field(ge=1)] = 1
    approve_reaction: Reaction = "white_check_mark"
    reject_reaction: Reaction = "x"

    @model_validator(mode="after")
    def _coherent(self) -> SlackSettings:
        if self.approve_reaction == self.reject_reaction:
            raise field_problem("reject_reaction", "must differ from approve_reaction, "
                                                    f"both are {self.approve_reaction!r}")
        people = set(self.approvers)
        # With only individual approvers listed, fewer people than the quorum can never approve.
        if people and not any(a.startswith("S") for a in people) \
                and len(people) < self.approvals_required:
            raise field_problem("approvals_required", f"{self.approvals_required} approvals "
                                 f"are required but only {len(people)} approver(s) are listed")
        return self


class TimingSettings(_Model):
    """Polling, waiting and estimating."""

    poll_interval: PositiveDuration = timedelta(seconds=30)
    login_grace: PositiveDuration = timedelta(minutes=5)
    escalate_after: Annotated[float, Field(gt=1)] = 2.0
    drain_timeout: PositiveDuration = timedelta(minutes=15)
    install_estimate: PositiveDuration = timedelta(minutes=40)
    join_estimate: PositiveDuration = timedelta(minutes=10)
    leave_estimate: PositiveDuration = timedelta(minutes=5)
    upload_timeout: PositiveDuration = timedelta(minutes=30)
    drain_estimate: PositiveDuration = timedelta(minutes=5)
    # Incremental: the people's work after each cluster joins the new supercluster
    # (re-provisioning endpoints, DNS, Conference Manager, bandwidth); the run pauses for it.
    incremental_people_time: PositiveDuration = timedelta(hours=1, minutes=30)
    max_parallel_installs: Annotated[int, Field(ge=1)] = 3
    lease: PositiveDuration = timedelta(minutes=2)
    tick: PositiveDuration = timedelta(seconds=2)
    # How long a process holds an outbox message it is sending: a crash delays its thread this
    # long. The outbox's Slack client times out after half of it (5 s at most).
    outbox_lease: PositiveDuration = timedelta(seconds=10)
    reverify_after: PositiveDuration = timedelta(hours=12)

    @model_validator(mode="after")
    def _outbox_lease_fits_a_send(self) -> TimingSettings:
        if self.outbox_lease < timedelta(seconds=2):
            raise field_problem("outbox_lease", "must be at least 2s: a Slack call must be able "
                                                "to end within half the lease")
        return self

    @model_validator(mode="after")
    def _lease_outlives_tick(self) -> TimingSettings:
        if self.lease <= self.tick:
            raise field_problem("lease", f"must be longer than tick ({spell_duration(self.tick)})"
                                          ", or a live worker loses its claim between two ticks")
        return self


class ChecklistSettings(_Model):
    """The guide's manual checklist items: acknowledged with buttons before a run starts."""

    # False for a team that keeps its checklist elsewhere (the items are then only shown).
    require_acknowledgement: bool = True


class EscalationSettings(_Model):
    """Whom to call and whom to mention when a cluster fails a vendor check."""

    contact: str = "Polycom Global Services, +1 800 765 9266"
    notify: list[SlackPrincipal] = []
    renotify_every: PositiveDuration = timedelta(minutes=15)


class PackageSpec(_Model):
    """Where to download one DMA upgrade package, and its checksum."""

    url: PackageUrl
    sha1: Sha1 | None = None


class DmaSettings(_Model):
    """How the bot talks to every cluster's API (a cluster may override TLS)."""

    verify_tls: bool = True
    ca_bundle: CaBundle | None = None
    timeout: PositiveDuration = timedelta(seconds=10)
    retries: Annotated[int, Field(ge=0)] = 2
    backoff: Duration = timedelta(seconds=0.2)
    # An install estimate a cluster reports above this is a bad answer, never shown as fact.
    max_install_estimate: PositiveDuration = timedelta(hours=24)

    @model_validator(mode="after")
    def _backoff_not_negative(self) -> DmaSettings:
        if self.backoff < timedelta(0):
            raise field_problem("backoff", "expected a duration of zero or more")
        return self


class SimClusterOverride(_Model):
    """Simulator values for one cluster (each falls back to the simulation-wide value)."""

    version: Version | None = None
    estimated_install_minutes: Annotated[float, Field(gt=0)] | None = None
    active_calls: Annotated[int, Field(ge=0)] | None = None


class SimTerritorySpec(_Model):
    """A territory the simulator starts with."""

    id: Name
    name: str
    primary: str
    backup: str | None = None
    conference_room_host: bool = False


class SimulationSettings(_Model):
    """What the simulated clusters look like (`upgradebot rehearse` and `simulate` only)."""

    version: Version = "10.0.0.3"
    estimated_install_minutes: Annotated[float, Field(gt=0)] = 35
    active_calls: Annotated[int, Field(ge=0)] = 2
    clusters: dict[str, SimClusterOverride] = {}
    territories: dict[str, list[SimTerritorySpec]] = {}
    faults: dict[str, list[Annotated[str, Field(min_length=1)]]] = {}


@dataclass(frozen=True)
class Target:
    """What an operator named: a supercluster or one cluster, with the clusters concerned."""

    kind: Literal["supercluster", "cluster"]
    name: str
    clusters: tuple[ClusterSpec, ...]
    supercluster: SuperclusterSpec | None


class WorkerSettings(_Model):
    """How much one worker process does at once."""

    # Visits in flight per process: a slow or silent cluster holds one, never the others.
    concurrency: Annotated[int, Field(ge=1, le=256)] = 16


class Settings(_Model):
    """The whole configuration file."""

    slack: SlackSettings = SlackSettings()
    timing: TimingSettings = TimingSettings()
    escalation: EscalationSettings = EscalationSettings()
    checklist: ChecklistSettings = ChecklistSettings()
    packages: dict[Version, PackageSpec] = {}
    dma: DmaSettings = DmaSettings()
    worker: WorkerSettings = WorkerSettings()
    superclusters: list[SuperclusterSpec] = []
    clusters: list[ClusterSpec] = []
    simulation: SimulationSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        # load_settings runs the same checks on the raw file so they are reported alongside any
        # field problem; this keeps Settings built in code (a rehearsal, a test) just as honest.
        problems = consistency_problems(self.model_dump(), Settings)
        if problems:
            raise inconsistent(problems)
        return self

    def all_clusters(self) -> list[ClusterSpec]:
        """Return every cluster: superclustered ones in file order, then stand-alone ones."""
        return [c for sc in self.superclusters for c in sc.clusters] + list(self.clusters)

    def cluster(self, name: str) -> ClusterSpec | None:
        """Return the cluster of that name (case-insensitive), if any."""
        return next((c for c in self.all_clusters() if c.name.casefold() == name.casefold()), None)

    def supercluster(self, name: str) -> SuperclusterSpec | None:
        """Return the supercluster of that name (case-insensitive), if any."""
        folded = name.casefold()
        return next((sc for sc in self.superclusters if sc.name.casefold() == folded), None)

    def supercluster_of(self, cluster: str) -> SuperclusterSpec | None:
        """Return the supercluster a cluster belongs to; None when stand-alone or unknown."""
        folded = cluster.casefold()
        return next((sc for sc in self.superclusters
                     if any(c.name.casefold() == folded for c in sc.clusters)), None)

    def target(self, name: str) -> Target:
        """Resolve a supercluster or cluster name, or raise UnknownTarget."""
        if (sc := self.supercluster(name)) is not None:
            return Target("supercluster", sc.name, tuple(sc.clusters), sc)
        if (cluster := self.cluster(name)) is not None:
            return Target("cluster", cluster.name, (cluster,), self.supercluster_of(cluster.name))
        known = [sc.name for sc in self.superclusters] + [c.name for c in self.clusters]
        raise UnknownTarget(name, self.nearest_name(name), known)

    def names(self) -> list[str]:
        """Return every supercluster and cluster name, in file order."""
        return [n for sc in self.superclusters for n in (sc.name, *(c.name for c in sc.clusters))] \
            + [c.name for c in self.clusters]

    def nearest_name(self, name: str) -> str | None:
        """Return the known name closest to a mistyped one, if any is close."""
        by_folded = {n.casefold(): n for n in self.names()}
        match = difflib.get_close_matches(name.casefold(), list(by_folded), n=1)
        return by_folded[match[0]] if match else None

    def verify_for(self, cluster: ClusterSpec) -> bool | str:
        """Return what to pass as requests' `verify` for a cluster: a CA bundle path or a flag."""
        # A cluster's own CA bundle means "verify with this", whatever dma.verify_tls says.
        if cluster.verify_tls is False:
            return False
        if cluster.ca_bundle is not None:
            return cluster.ca_bundle
        if cluster.verify_tls is None and not self.dma.verify_tls:
            return False
        return self.dma.ca_bundle or True

    def tls_warnings(self) -> list[str]:
        """Return one line per cluster whose connection is not protected by verified TLS."""
        lines = []
        for c in self.all_clusters():
            parts = urlsplit(c.api_url)
            if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
                lines.append(f"cluster {c.name!r} is reached over plain http ({c.api_url}): "
                             "TLS is off and the DMA password is sent unencrypted")
            elif parts.scheme == "https" and self.verify_for(c) is False:
                where = "its verify_tls" if c.verify_tls is False else "dma.verify_tls"
                lines.append(f"TLS verification is off for cluster {c.name!r} ({c.api_url}, set "
                             f"by {where}): its certificate is not checked")
        return lines
