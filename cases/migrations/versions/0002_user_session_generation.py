"""Users: session_generation, raised by a password reset so the account's open sessions end.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing accounts start at 0, as new ones do.
    op.add_column("users", sa.Column("session_generation", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # Batch: SQLite rebuilds the table where it cannot drop a column in place.
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
