"""Party changes: every addition or edit of a party's record with its actor, time and the fields it changed; and the
review queue's index, a partial one over the cases awaiting review (`cases.models.Case`).

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "party_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_party_changes"),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name="fk_party_changes_party_id_parties", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_party_changes_party_id", "party_changes", ["party_id"])
    awaiting = sa.text("state = 'detected'")
    op.create_index(
        "ix_cases_awaiting_review",
        "cases",
        ["triggered_at", "id"],
        postgresql_where=awaiting,
        sqlite_where=awaiting,
    )


def downgrade() -> None:
    op.drop_index("ix_cases_awaiting_review", table_name="cases")
    op.drop_table("party_changes")
