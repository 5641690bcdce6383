"""Cases, their transition chain, users and the evidence access log.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("point_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("subtype", sa.String(32), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("triggered_at", _utc(), nullable=False),
        sa.Column("ended_at", _utc(), nullable=True),
        sa.Column("detected_at", _utc(), nullable=False),
        sa.Column("party", sa.String(128), nullable=True),
        sa.Column("gps_lat", sa.Double(), nullable=False),
        sa.Column("gps_lon", sa.Double(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("manifest_key", sa.String(512), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("event_id", name="uq_cases_event_id"),
    )
    op.create_index("ix_cases_point_id", "cases", ["point_id"])
    op.create_index("ix_cases_state", "cases", ["state"])
    op.create_index("ix_cases_triggered_at", "cases", ["triggered_at"])

    op.create_table(
        "case_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_transitions_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_case_transitions"),
        sa.UniqueConstraint("case_id", "seq", name="uq_case_transitions_case_id"),
    )
    op.create_index("ix_case_transitions_case_id", "case_transitions", ["case_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )

    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_access_log_case_id_cases"),
        sa.PrimaryKeyConstraint("id", name="pk_access_log"),
    )
    op.create_index("ix_access_log_username", "access_log", ["username"])
    op.create_index("ix_access_log_key", "access_log", ["key"])
    op.create_index("ix_access_log_case_id", "access_log", ["case_id"])


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_table("users")
    op.drop_table("case_transitions")
    op.drop_table("cases")
