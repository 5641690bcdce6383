"""Cases: evidence_pending, set while some evidence file waits in the local spool for the object store.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cases were filed with all their evidence stored.
    op.add_column("cases", sa.Column("evidence_pending", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_cases_evidence_pending", "cases", ["evidence_pending"])


def downgrade() -> None:
    op.drop_index("ix_cases_evidence_pending", table_name="cases")
    # Batch: SQLite rebuilds the table where it cannot drop a column in place.
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("evidence_pending")
