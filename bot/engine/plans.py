"""The values a plan is made from and made of: requests, facts, steps, plans (all frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from bot.engine.errors import UserError

ParamValue = str | tuple[str, ...]
Params = tuple[tuple[str, ParamValue], ...]


class PlanningError(UserError, ValueError):
    """A plan that cannot be made; the message says what is wrong and what would work."""


class Strategy(StrEnum):
    """How a target is upgraded (DESIGN.md, "Slash command")."""

    AUTO = "auto"
    BASIC = "basic"
    FULL_OUTAGE = "full-outage"
    INCREMENTAL = "incremental"
    # Recovery plans (bot/engine/recovery.py): never asked for with `strategy=`.
    ROLLBACK = "rollback"
    RESTORE = "restore"


# What `/upgrade plan … strategy=` accepts.
PLANNABLE: tuple[Strategy, ...] = (Strategy.AUTO, Strategy.BASIC, Strategy.FULL_OUTAGE,
                                   Strategy.INCREMENTAL)
RECOVERY: frozenset[Strategy] = frozenset({Strategy.ROLLBACK, Strategy.RESTORE})


class StepKind(StrEnum):
    """What one step does; stored by name (never pickled)."""

    PREFLIGHT = "preflight"
    UPLOAD = "upload"
    RECORD_TERRITORIES = "record_territories"
    REASSIGN_TERRITORIES = "reassign_territories"
    BUSY_OUT = "busy_out"
    DRAIN = "drain"
    OUT_OF_SERVICE = "out_of_service"
    REMOVE = "remove"
    INSTALL = "install"
    WAIT_LOGIN = "wait_login"
    VERIFY = "verify"
    LICENCE_KEYS = "licence_keys"
    JOIN = "join"
    MOVE_TERRITORIES = "move_territories"
    RESTORE_TERRITORIES = "restore_territories"
    RETURN_TO_SERVICE = "return_to_service"
    CHECK_TERRITORIES = "check_territories"
    FINAL_CHECK = "final_check"
    PEOPLE_WORK = "people_work"  # incremental: a pause for the people's work of the factors
    # Recovery (bot/engine/recovery_plans.py).
    RECOVERY_CHECK = "recovery_check"
    ROLLBACK = "rollback"
    ASSIGN_TERRITORIES = "assign_territories"
    SERVICE_CHECK = "service_check"


@dataclass(frozen=True)
class ClusterFacts:
    """One cluster as read before planning."""

    name: str
    servers: int
    version: str
    estimated_install_minutes: float | None = None
    upgrade_version: str | None = None  # the package already uploaded, if any
    active_calls: int | None = None  # as the cluster reports them (`GET /status`)
    registrations: int | None = None


@dataclass(frozen=True)
class TerritoryFacts:
    """One territory as read before planning."""

    territory_id: str
    name: str
    primary: str | None
    backup: str | None
    conference_room_host: bool = False


@dataclass(frozen=True)
class PlanTiming:
    """Step estimates in seconds, and how many installs may run side by side."""

    install_estimate_s: float = 2400.0
    login_grace_s: float = 300.0
    join_estimate_s: float = 600.0
    leave_estimate_s: float = 300.0
    drain_estimate_s: float = 300.0
    upload_estimate_s: float = 600.0
    verify_estimate_s: float = 60.0
    short_step_s: float = 30.0
    territory_step_s: float = 60.0
    max_parallel_installs: int = 3
    people_time_s: float = 5400.0  # incremental: people's work after each cluster joins


@dataclass(frozen=True)
class PreCheck:
    """One row of the validation gate: a check on one cluster, what it found, whether it passed."""

    cluster: str
    check: str
    ok: bool
    detail: str
    fact: str = ""  # what the digest covers ("" for live counters such as calls)


@dataclass(frozen=True)
class PlanRequest:
    """Everything a plan is computed from."""

    target: str
    target_kind: Literal["supercluster", "cluster"]
    clusters: tuple[ClusterFacts, ...]  # inventory order
    territories: tuple[TerritoryFacts, ...]
    to_version: str
    strategy: Strategy = Strategy.AUTO
    timing: PlanTiming = field(default_factory=PlanTiming)
    compatible_override: bool | None = None  # the supercluster's check-compatibility answer
    emergency: bool = False  # the plan command said `emergency`: installing with calls up
    supercluster: str | None = None  # a cluster target's supercluster, when it is a member
    prechecks: tuple[PreCheck, ...] = ()  # the validation gate's rows (bot.engine.gate)
    seed: str | None = None  # cluster A of a full outage, when the configuration pins one


@dataclass(frozen=True)
class StepSpec:
    """One planned step: what, on which cluster, after which steps, for how long."""

    key: str
    kind: StepKind
    cluster: str | None
    deps: tuple[str, ...]
    estimate_s: float
    title: str
    params: Params = ()
    safe_point: bool = False  # the run may stop just before this step and leave things consistent

    def param(self, name: str, default: ParamValue | None = None) -> ParamValue | None:
        """Return the named parameter, or the default."""
        return next((value for key, value in self.params if key == name), default)


@dataclass(frozen=True)
class Plan:
    """A complete, serialisable plan: what gets posted, approved and run."""

    target: str
    target_kind: Literal["supercluster", "cluster"]
    to_version: str
    from_versions: tuple[tuple[str, str], ...]
    strategy: Strategy
    requested: Strategy
    reasons: tuple[str, ...]
    order: tuple[str, ...]
    seed: str | None
    steps: tuple[StepSpec, ...]
    cluster_estimates: tuple[tuple[str, float], ...]
    total_estimate_s: float
    outage_estimate_s: float | None
    needs_window: bool
    factors: tuple[str, ...]
    checklist: tuple[str, ...]
    digest: str
    emergency: bool = False
    acknowledge: tuple[str, ...] = ()  # checklist items an operator must acknowledge first
    prechecks: tuple[PreCheck, ...] = ()  # the validation gate's results when planned

    def step(self, key: str) -> StepSpec:
        """Return the step with this key."""
        for spec in self.steps:
            if spec.key == key:
                return spec
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        """The step keys in plan order."""
        return tuple(spec.key for spec in self.steps)
