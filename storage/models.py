"""Typed SQLAlchemy models: the bot's tables, which are the truth the scheduler only wakes up.

Layers: storage imports only the pure engine (`bot.engine`, for run and step statuses) and
`bot.dma.models`; never Slack, handlers, the worker, services, messages or delivery.

Status and kind columns are plain strings in the schema and StrEnums in Python: a str assigned
is converted to the member (an unknown value is refused), and reading gives the member. JSON
columns are `sa.JSON` (JSONB on PostgreSQL) and track in-place changes of their top level only:
assign a new dict to persist a nested change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from bot.engine.states import RunStatus, StepStatus
from storage.enums import ApprovalKind, OutboxKind, OutboxStatus, member

_E = TypeVar("_E", bound=StrEnum)

# Named constraints, so that SQLite batch migrations can find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime column; naive datetimes are refused on the way in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive UTC for SQLite, which drops offsets)."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime refused (give a timezone-aware one): {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime whatever the driver returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EnumString(sa.TypeDecorator[_E], Generic[_E]):
    """A StrEnum stored as its value in a plain string column (the schema stays a VARCHAR)."""

    impl = sa.String()
    cache_ok = True

    def __init__(self, enum: type[_E]) -> None:
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: _E | str | None, dialect: Dialect) -> str | None:
        """Store the member's value; a str that names no member is refused."""
        return None if value is None else member(self.enum, value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> _E | None:
        """Give back the member; a stored value this code does not know is reported as such."""
        if value is None:
            return None
        return member(self.enum, value, where=" read from the database")


if TYPE_CHECKING:
    from sqlalchemy.sql.elements import SQLCoreOperations

    class EnumMapped(Mapped[_E]):
        """Mapped[enum] whose attribute also accepts the value as a str (converted on set)."""

        def __set__(self, instance: Any, value: SQLCoreOperations[_E] | _E | str) -> None:
            """Set the member (a str is converted by the model's validator)."""
else:
    EnumMapped = Mapped  # at run time a plain Mapped[...] annotation, as declarative expects


def enum_column(enum: type[_E], **kwargs: Any) -> EnumMapped[_E]:
    """Map a StrEnum attribute on a string column."""
    return cast("EnumMapped[_E]", mapped_column(EnumString(enum), **kwargs))


def _json() -> sa.types.TypeEngine[Any]:
    """Return a new JSON type (JSONB on PostgreSQL); each mutable wrapper needs its own instance."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


JSONDict = MutableDict.as_mutable(_json())
JSONList = MutableList.as_mutable(_json())


class Base(DeclarativeBase):
    """Declarative base whose metadata the migrations describe."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), str: sa.String()}


class Run(Base):
    """One upgrade of a supercluster or a cluster, from plan to end."""

    __tablename__ = "runs"
    __table_args__ = (
        sa.Index("ix_runs_status", "status"),
        sa.Index("ix_runs_target", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str]
    target_kind: Mapped[str]  # "supercluster" | "cluster"
    to_version: Mapped[str]
    strategy: Mapped[str]
    strategy_reason: Mapped[str] = mapped_column(sa.Text, default="")
    status: EnumMapped[RunStatus] = enum_column(RunStatus)
    requester: Mapped[str]
    channel: Mapped[str | None]
    message_ts: Mapped[str | None]
    plan: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    plan_digest: Mapped[str]
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    window_tz: Mapped[str | None]
    overrun_approved: Mapped[bool] = mapped_column(default=False)
    pause_reason: Mapped[str | None] = mapped_column(sa.Text)
    # A recovery run (rollback, restore) names the run it recovers; None for an upgrade.
    recovers: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Optimistic locking: a flush that changes a row someone else changed raises StaleDataError.
    version_id: Mapped[int] = mapped_column(nullable=False)

    steps: Mapped[list[Step]] = relationship(back_populates="run", order_by="Step.seq")

    __mapper_args__ = {"version_id_col": version_id}

    @property
    def name(self) -> str:
        """Return the name users see, e.g. R12."""
        return f"R{self.id}"

    @validates("status")
    def _status(self, _key: str, value: RunStatus | str) -> RunStatus:
        return member(RunStatus, value)


class Step(Base):
    """One step of a run's plan, claimed by one worker at a time under a lease."""

    __tablename__ = "steps"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "key"),
        sa.Index("ix_steps_run_id_seq", "run_id", "seq"),
        # The claim's one query: claimable steps by due time (finished steps never scanned).
        sa.Index("ix_steps_status_next_check_at", "status", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"))
    seq: Mapped[int]
    key: Mapped[str]  # stable within the run, e.g. "install:dallas"
    kind: Mapped[str]
    cluster: Mapped[str | None]
    deps: Mapped[list[str]] = mapped_column(JSONList, default=list)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    estimate_s: Mapped[float] = mapped_column(default=0.0)
    title: Mapped[str]
    safe_point: Mapped[bool] = mapped_column(default=False)
    status: EnumMapped[StepStatus] = enum_column(StepStatus, default=StepStatus.PENDING)
    phase: Mapped[str | None]
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    next_check_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    run: Mapped[Run] = relationship(back_populates="steps")

    @validates("status")
    def _status(self, _key: str, value: StepStatus | str) -> StepStatus:
        return member(StepStatus, value)


class StepClaim(Base):
    """One claim of a step: the log that proves no step ran in two places at once."""

    __tablename__ = "step_claims"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("steps.id"), index=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    worker_id: Mapped[str]
    claimed_at: Mapped[datetime]
    lease_until: Mapped[datetime]
    released_at: Mapped[datetime | None]
    took_over_from: Mapped[str | None]


class Approval(Base):
    """An approval, rejection or overrun approval given by one person for one run."""

    __tablename__ = "approvals"
    __table_args__ = (sa.UniqueConstraint("run_id", "user_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"))
    user_id: Mapped[str]
    kind: EnumMapped[ApprovalKind] = enum_column(ApprovalKind)
    source: Mapped[str]  # "reaction" | "button" | "cli" | "rehearsal"
    event_id: Mapped[str | None]
    created_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]

    @validates("kind")
    def _kind(self, _key: str, value: ApprovalKind | str) -> ApprovalKind:
        return member(ApprovalKind, value)


class SlackEvent(Base):
    """A Slack event id already handled (Slack retries carry the same id)."""

    __tablename__ = "slack_events"

    event_id: Mapped[str] = mapped_column(primary_key=True)
    kind: Mapped[str]
    received_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """Who did what, when: every decision and action on a run."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str]  # Slack user id, "worker:<id>", "cli", "system"
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(sa.ForeignKey("steps.id"))
    action: Mapped[str]
    detail: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)


class OutboxMessage(Base):
    """A Slack message waiting to be posted, so an outage or a 429 never loses it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (sa.Index("ix_outbox_messages_status_not_before", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("runs.id"))
    channel: Mapped[str | None]
    kind: EnumMapped[OutboxKind] = enum_column(OutboxKind, default=OutboxKind.POST)
    thread: Mapped[bool] = mapped_column(default=False)  # reply in the run's thread
    key: Mapped[str | None] = mapped_column(unique=True)  # idempotent enqueue
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDict)  # {"text": ..., "blocks"?: ...}
    status: EnumMapped[OutboxStatus] = enum_column(OutboxStatus, default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    @validates("kind")
    def _kind(self, _key: str, value: OutboxKind | str) -> OutboxKind:
        return member(OutboxKind, value)

    @validates("status")
    def _status(self, _key: str, value: OutboxStatus | str) -> OutboxStatus:
        return member(OutboxStatus, value)


class TerritorySnapshot(Base):
    """A territory's assignment as it was before a run changed it (to put it back)."""

    __tablename__ = "territory_snapshots"
    __table_args__ = (sa.UniqueConstraint("run_id", "territory_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"))
    supercluster: Mapped[str]
    territory_id: Mapped[str]
    data: Mapped[dict[str, Any]] = mapped_column(JSONDict)
    recorded_at: Mapped[datetime]


class StepDuration(Base):
    """How long a kind of step took on a cluster, to predict the next run's finish."""

    __tablename__ = "step_durations"
    __table_args__ = (
        sa.Index("ix_step_durations_kind_cluster_recorded_at", "kind", "cluster", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"))
    kind: Mapped[str]
    cluster: Mapped[str | None]
    seconds: Mapped[float]
    estimate_s: Mapped[float]
    recorded_at: Mapped[datetime]


class Escalation(Base):
    """A vendor escalation condition met by a cluster, open until an operator resolves it."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("steps.id"))
    cluster: Mapped[str]
    condition: Mapped[str]
    details: Mapped[dict[str, Any]] = mapped_column(JSONDict, default=dict)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]
    # Who pressed Acknowledge, when; and when the on-call group was last mentioned about it.
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None]
    notified_at: Mapped[datetime | None]


class DmaRequest(Base):
    """One request a step sent to a cluster, redacted, kept for the evidence bundle."""

    __tablename__ = "dma_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), index=True)
    step_id: Mapped[int | None] = mapped_column(sa.ForeignKey("steps.id"))
    at: Mapped[datetime]
    cluster: Mapped[str]
    method: Mapped[str]
    path: Mapped[str]
    status: Mapped[int | None]
    elapsed_ms: Mapped[int]
    request: Mapped[str | None] = mapped_column(sa.Text)
    response: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None]


class Reverification(Base):
    """The final checks run again some hours after a completed run, once."""

    __tablename__ = "reverifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id"), unique=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    done_at: Mapped[datetime | None]
    ok: Mapped[bool | None]
    summary: Mapped[str | None] = mapped_column(sa.Text)
