"""Case claims: a reviewer's hold on a case in the evidence review, with its expiry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_claims",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("case_id", name="pk_case_claims"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_claims_case_id_cases", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("case_claims")
