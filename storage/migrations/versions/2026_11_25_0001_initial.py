"""Initial schema: runs, steps and their claims, approvals, events, audit, outbox, history.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("target_kind", sa.String(), nullable=False),
        sa.Column("to_version", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("strategy_reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("requester", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("message_ts", sa.String(), nullable=True),
        sa.Column("plan", _json(), nullable=False),
        sa.Column("plan_digest", sa.String(), nullable=False),
        sa.Column("window_start", _utc(), nullable=True),
        sa.Column("window_end", _utc(), nullable=True),
        sa.Column("window_tz", sa.String(), nullable=True),
        sa.Column("overrun_approved", sa.Boolean(), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        _pk("runs"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_target", "runs", ["target"])

    op.create_table(
        "steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=True),
        sa.Column("deps", _json(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("estimate_s", sa.Double(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("safe_point", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("phase", sa.String(), nullable=True),
        sa.Column("data", _json(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_until", _utc(), nullable=True),
        sa.Column("next_check_at", _utc(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _fk("steps", "run_id", "runs"),
        _pk("steps"),
        sa.UniqueConstraint("run_id", "key", name=op.f("uq_steps_run_id_key")),
    )
    op.create_index("ix_steps_run_id_seq", "steps", ["run_id", "seq"])

    op.create_table(
        "step_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("claimed_at", _utc(), nullable=False),
        sa.Column("lease_until", _utc(), nullable=False),
        sa.Column("released_at", _utc(), nullable=True),
        sa.Column("took_over_from", sa.String(), nullable=True),
        _fk("step_claims", "run_id", "runs"),
        _fk("step_claims", "step_id", "steps"),
        _pk("step_claims"),
    )
    op.create_index(op.f("ix_step_claims_run_id"), "step_claims", ["run_id"])
    op.create_index(op.f("ix_step_claims_step_id"), "step_claims", ["step_id"])

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("withdrawn_at", _utc(), nullable=True),
        _fk("approvals", "run_id", "runs"),
        _pk("approvals"),
        sa.UniqueConstraint(
            "run_id", "user_id", "kind", name=op.f("uq_approvals_run_id_user_id_kind")
        ),
    )

    op.create_table(
        "slack_events",
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_slack_events")),
    )
    op.create_index(op.f("ix_slack_events_received_at"), "slack_events", ["received_at"])

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("detail", _json(), nullable=False),
        _fk("audit_entries", "run_id", "runs"),
        _fk("audit_entries", "step_id", "steps"),
        _pk("audit_entries"),
    )
    op.create_index(op.f("ix_audit_entries_run_id"), "audit_entries", ["run_id"])

    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("thread", sa.Boolean(), nullable=False),
        sa.Column("key", sa.String(), nullable=True),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", _utc(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("slack_ts", sa.String(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _fk("outbox_messages", "run_id", "runs"),
        _pk("outbox_messages"),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_messages_key")),
    )
    op.create_index(
        "ix_outbox_messages_status_not_before", "outbox_messages", ["status", "not_before"]
    )

    op.create_table(
        "territory_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("supercluster", sa.String(), nullable=False),
        sa.Column("territory_id", sa.String(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        _fk("territory_snapshots", "run_id", "runs"),
        _pk("territory_snapshots"),
        sa.UniqueConstraint(
            "run_id", "territory_id", name=op.f("uq_territory_snapshots_run_id_territory_id")
        ),
    )

    op.create_table(
        "step_durations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=True),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("estimate_s", sa.Double(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        _fk("step_durations", "run_id", "runs"),
        _pk("step_durations"),
    )
    op.create_index(
        "ix_step_durations_kind_cluster_recorded_at",
        "step_durations",
        ["kind", "cluster", "recorded_at"],
    )

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("condition", sa.String(), nullable=False),
        sa.Column("details", _json(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("resolved_at", _utc(), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        _fk("escalations", "run_id", "runs"),
        _fk("escalations", "step_id", "steps"),
        _pk("escalations"),
    )
    op.create_index(op.f("ix_escalations_run_id"), "escalations", ["run_id"])


def downgrade() -> None:
    for table in (
        "escalations",
        "step_durations",
        "territory_snapshots",
        "outbox_messages",
        "audit_entries",
        "slack_events",
        "approvals",
        "step_claims",
        "steps",
        "runs",
    ):
        op.drop_table(table)  # its indexes go with it
