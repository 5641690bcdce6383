"""The case store's tables (SQLAlchemy 2.0). The schema itself is owned by the Alembic migrations in
`cases/migrations/`; these classes must describe the same tables.

>>> from sqlalchemy import create_engine, select
>>> from sqlalchemy.orm import Session
>>> engine = create_engine("sqlite://")
>>> Base.metadata.create_all(engine)
>>> with Session(engine) as s:
...     s.add(User(username="li", display_name="Li", role="reviewer", password_hash="x"))
...     s.commit()
...     s.scalars(select(User.role)).one()
'reviewer'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, MetaData, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite keeps none, so values are stored as UTC and read
    back as UTC. Naive datetimes are refused: their zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: times must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    # Named constraints, so later migrations can alter them by name on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime()}


class Case(Base):
    """One violation event raised as a case; `state` follows `cases.lifecycle`."""

    __tablename__ = "cases"
    # The review queue, oldest first. The cases awaiting review are the newest, so walking the trigger-time index
    # from the oldest passes every decided case first (90 ms at 100,000 cases); the planner, which assumes the states
    # spread evenly over time, prefers that walk to a (state, triggered_at) index, but takes a partial one.
    __table_args__ = (
        Index(
            "ix_cases_awaiting_review",
            "triggered_at",
            "id",
            postgresql_where=text("state = 'detected'"),
            sqlite_where=text("state = 'detected'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    point_id: Mapped[str] = mapped_column(String(32), index=True)
    device_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(32))
    subtype: Mapped[str] = mapped_column(String(32))
    zone_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime]
    triggered_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    party: Mapped[str | None] = mapped_column(String(128))
    gps_lat: Mapped[float]
    gps_lon: Mapped[float]
    confidence: Mapped[float]
    evidence: Mapped[dict[str, str]] = mapped_column(JSON)
    manifest_key: Mapped[str] = mapped_column(String(512))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    # Some evidence file still waits in the local spool for the object store (cases.spool); the review UI shows
    # it, and the upload clears it. Not a lifecycle state: the case can be reviewed from the spooled copy.
    evidence_pending: Mapped[bool] = mapped_column(default=False, index=True)
    # Set by lifecycle moves (`cases.procedure`); each value is also in the audit chain of the move that set it.
    party_kind: Mapped[str | None] = mapped_column(String(16))  # person | organisation: the major-fine threshold
    fine_yuan: Mapped[int | None]  # proposed, then decided; whole yuan, as penalty decisions state them
    statement_waived: Mapped[bool] = mapped_column(default=False)
    statement_due_at: Mapped[datetime | None]  # end of the statement window set by the notice
    recheck_due_at: Mapped[datetime | None]  # end of the period a warning gives to correct
    # The party on record (`cases.parties`): bound by plate or zone automatically, or picked by a reviewer, whose
    # name then stands in `party_confirmed_by`. `party` above stays what the evidence read (the plate), checked
    # against the manifest by `feixian evidence verify`.
    party_id: Mapped[int | None] = mapped_column(ForeignKey("parties.id"), index=True)
    party_confirmed_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"Case(id={self.id}, event_id={self.event_id!r}, state={self.state!r})"


class Party(Base):
    """A merchant bound to zones of points, or a vehicle by its plate with its transport company (the party a
    notice is addressed to). `licence_no` is the business licence / unified social credit code; `contact` is for
    notices only and is never published."""

    __tablename__ = "parties"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # merchant | vehicle
    name: Mapped[str] = mapped_column(String(128))  # the merchant's operator, or the vehicle's transport company
    shop: Mapped[str | None] = mapped_column(String(128))
    # A merchant's own (unique among merchants, the import's key); a vehicle's is its company's, shared by its fleet.
    licence_no: Mapped[str | None] = mapped_column(String(64), index=True)
    plate: Mapped[str | None] = mapped_column(String(16), unique=True)  # normalised: `cases.parties.normalise_plate`
    company: Mapped[str | None] = mapped_column(String(128))
    contact: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PartyZone(Base):
    """A merchant's place: a zone of a point (a shop front may span zones, a zone may hold neighbouring shops)."""

    __tablename__ = "party_zones"
    __table_args__ = (UniqueConstraint("party_id", "point_id", "zone_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    point_id: Mapped[str] = mapped_column(String(32))
    zone_id: Mapped[str] = mapped_column(String(64))


class PartyChange(Base):
    """One addition or edit of a party's record (the review UI's forms, `feixian parties import`): who, when, and each
    field it changed as [before, after], so a notice sent to a changed contact can be traced to the change."""

    __tablename__ = "party_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    party_id: Mapped[int] = mapped_column(ForeignKey("parties.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(16))  # created | updated
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)


class CaseTransition(Base):
    """One state change of a case, chained to the previous one by hash (`cases.audit`)."""

    __tablename__ = "case_transitions"
    # One transition per position: two concurrent changes of one case cannot both extend the chain.
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    seq: Mapped[int]
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # facts the move set, hashed with it
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CaseClaim(Base):
    """A reviewer's hold on a case in the evidence review (`cases.claims`): nobody else decides it until it expires or
    the claimant's decision releases it. One row per case at most; an expired row is taken over in place."""

    __tablename__ = "case_claims"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class User(Base):
    """A person who signs in to the review UI; `role` is a `cases.lifecycle.Role` value."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Raised by a password reset; a session signed in under an older value has ended.
    session_generation: Mapped[int] = mapped_column(default=0)


class AccessLog(Base):
    """Who read which evidence object when (legal requirement 5)."""

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(512), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
