"""Index the claim's one query: claimable steps by status and due time.

Revision ID: i9_0001
Revises: i11a_0001
Create Date: 2026-12-01 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "i9_0001"
down_revision: str | Sequence[str] | None = "i11a_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the index."""
    op.create_index("ix_steps_status_next_check_at", "steps", ["status", "next_check_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_steps_status_next_check_at", table_name="steps")
