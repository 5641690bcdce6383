"""Parties: merchants bound to zones of points and vehicles by plate with their transport company; cases: the party
on record and who confirmed it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("shop", sa.String(128), nullable=True),
        sa.Column("licence_no", sa.String(64), nullable=True),
        sa.Column("plate", sa.String(16), nullable=True),
        sa.Column("company", sa.String(128), nullable=True),
        sa.Column("contact", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parties"),
        sa.UniqueConstraint("plate", name="uq_parties_plate"),
    )
    op.create_index("ix_parties_kind", "parties", ["kind"])
    op.create_index("ix_parties_licence_no", "parties", ["licence_no"])
    op.create_table(
        "party_zones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("party_id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.String(32), nullable=False),
        sa.Column("zone_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_party_zones"),
        sa.ForeignKeyConstraint(
            ["party_id"], ["parties.id"], name="fk_party_zones_party_id_parties", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("party_id", "point_id", "zone_id", name="uq_party_zones_party_id"),
    )
    op.create_index("ix_party_zones_party_id", "party_zones", ["party_id"])
    # Added in place, never by rebuilding `cases` (SQLite's batch mode drops the table, which the foreign keys of
    # the transitions and the access log refuse once they have rows); SQLite takes a REFERENCES clause with ADD
    # COLUMN when the column may be NULL, but Alembic only writes it as a separate ALTER, which SQLite lacks.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE cases ADD COLUMN party_id INTEGER REFERENCES parties (id)")
    else:
        op.add_column("cases", sa.Column("party_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_cases_party_id_parties", "cases", "parties", ["party_id"], ["id"])
    op.add_column("cases", sa.Column("party_confirmed_by", sa.String(64), nullable=True))
    op.create_index("ix_cases_party_id", "cases", ["party_id"])


def downgrade() -> None:
    op.drop_index("ix_cases_party_id", table_name="cases")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops a column in place, unless a constraint names it: the REFERENCES clause is unnamed
        # in the column itself, which it drops with it.
        op.execute("ALTER TABLE cases DROP COLUMN party_confirmed_by")
        op.execute("ALTER TABLE cases DROP COLUMN party_id")
    else:
        op.drop_constraint("fk_cases_party_id_parties", "cases", type_="foreignkey")
        op.drop_column("cases", "party_confirmed_by")
        op.drop_column("cases", "party_id")
    op.drop_table("party_zones")
    op.drop_table("parties")
