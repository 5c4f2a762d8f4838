"""A recovery run (rollback, restore) names the run it recovers.

Revision ID: i7_0001
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "i7_0001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add runs.recovers, a reference to the run a recovery run recovers."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("recovers", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_runs_recovers_runs"), "runs", ["recovers"], ["id"])


def downgrade() -> None:
    """Drop runs.recovers."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("fk_runs_recovers_runs"), type_="foreignkey")
        batch.drop_column("recovers")
