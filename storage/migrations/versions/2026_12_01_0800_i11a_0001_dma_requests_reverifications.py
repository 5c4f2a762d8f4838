"""DMA requests kept for the evidence bundle; re-verifications after a completed run.

Revision ID: i11a_0001
Revises: i7_0001
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i11a_0001"
down_revision: str | Sequence[str] | None = "i7_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dma_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Integer(), nullable=True),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("cluster", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("request", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"],
                                name=op.f("fk_dma_requests_run_id_runs")),
        sa.ForeignKeyConstraint(["step_id"], ["steps.id"],
                                name=op.f("fk_dma_requests_step_id_steps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dma_requests")),
    )
    op.create_index(op.f("ix_dma_requests_run_id"), "dma_requests", ["run_id"])
    op.create_table(
        "reverifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("due_at", _utc(), nullable=False),
        sa.Column("done_at", _utc(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"],
                                name=op.f("fk_reverifications_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reverifications")),
        sa.UniqueConstraint("run_id", name=op.f("uq_reverifications_run_id")),
    )
    op.create_index(op.f("ix_reverifications_due_at"), "reverifications", ["due_at"])


def downgrade() -> None:
    op.drop_table("reverifications")
    op.drop_table("dma_requests")
