"""Cases: the facts lifecycle moves set (party kind, fine, statement waiver, statement and recheck due dates);
transitions: those facts as hashed with the move.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("party_kind", sa.String(16), nullable=True))
    op.add_column("cases", sa.Column("fine_yuan", sa.Integer(), nullable=True))
    # Existing cases never reached a decision through these checks: none waived its statement window.
    op.add_column("cases", sa.Column("statement_waived", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("cases", sa.Column("statement_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("recheck_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("case_transitions", sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Batch: SQLite rebuilds the table where it cannot drop a column in place.
    with op.batch_alter_table("case_transitions") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("cases") as batch:
        for column in ("recheck_due_at", "statement_due_at", "statement_waived", "fine_yuan", "party_kind"):
            batch.drop_column(column)
