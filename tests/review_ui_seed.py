"""A small real world for the review UI's tests: a migrated SQLite case store, a local evidence store
and cases raised through the real evidence builder (H.264 clip, original and annotated key frames,
hashed manifest), plus one account per role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from cases.db import make_engine, session_factory, upgrade
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from feixian.domain import Category, Point, Source, Zone, ZoneKind
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import Frame, encode_jpeg
from review_ui.app import ReviewServices

PASSWORD = "review-pass-1"
SECRET = "s" * 32
NOW = datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
POINT = Point(
    id="JDZ-001",
    name="博乐路沙霞路口",
    town="嘉定镇",
    device_id="cam-jdz-001",
    gps=(31.383, 121.251),
    source=Source(kind="push"),
    zones=[Zone(id="front", kind=ZoneKind.NO_OCCUPATION, polygon=[(20, 140), (300, 140), (300, 232), (20, 232)])],
    categories=[Category.OCCUPATION],
    announced_on=date(2025, 12, 1),
    legal_review=True,
    technical_review=True,
)
STALL_BOX = (120.0, 150.0, 200.0, 220.0)
FPS = 5.0


def scene(start: datetime, n: int) -> list[Frame]:
    """A street with a stall standing in the shop-front zone and a passer-by walking across."""
    frames = []
    for i in range(n):
        img = np.full((240, 320, 3), (92, 98, 104), np.uint8)
        img[:120] = (170, 150, 120)  # shop fronts
        x1, y1, x2, y2 = (int(v) for v in STALL_BOX)
        cv2.rectangle(img, (x1, y1), (x2, y2), (40, 120, 200), -1)
        px = 10 + i * 14
        cv2.rectangle(img, (px, 110), (px + 16, 170), (60, 60, 60), -1)
        frames.append(Frame(POINT.id, i, start + timedelta(seconds=i / FPS), encode_jpeg(img)))
    return frames


def raise_case(
    cases: CaseService,
    builder: EvidenceBuilder,
    started: datetime,
    plate: str | None = None,
    plate_crop: bytes | None = None,
) -> int:
    frames = scene(started, 20)
    stall = ObjectSeen(STALL_BOX, "stall", 0.87, track_id=3)
    event = ViolationEvent(
        point_id=POINT.id,
        category=Category.OCCUPATION,
        subtype="stall",
        zone_id="front",
        started_at=started,
        triggered_at=started + timedelta(seconds=3),
        ended_at=None,
        objects=[stall],
        keyframes=[KeyFrame("first_seen", frames[0], [stall]), KeyFrame("after_dwell", frames[15], [stall])],
        plate=plate,
        plate_crop=plate_crop,
        details={"dwell_s": 3.0},
    )
    bundle = builder.build(event, POINT, frames, FPS)
    case, _ = cases.open_case(bundle.to_new_case(event, POINT))
    return case.id


@dataclass
class World:
    services: ReviewServices
    cases: CaseService
    users: UserService
    store: LocalObjectStore
    db_url: str
    case_ids: list[int]


def _db_url(root: Path) -> str:
    return f"sqlite:///{root / 'feixian.db'}"


def seed(root: Path, n_cases: int) -> None:
    """Under `root`: `n_cases` detected cases a minute apart (oldest first) and the users `rev`
    (reviewer) and `ops` (ops). The folder can be copied to give each test its own world quickly."""
    upgrade(_db_url(root))
    engine = make_engine(_db_url(root))
    sessions = session_factory(engine)
    store = LocalObjectStore(root / "evidence")
    builder = EvidenceBuilder(store, {"name": "test-model", "version": "1", "sha256": "ab" * 32}, {"conf": 0.35})
    start = NOW - timedelta(hours=2)
    for i in range(n_cases):
        raise_case(CaseService(sessions), builder, start + timedelta(minutes=i))
    users = UserService(sessions)
    users.add_user("rev", PASSWORD, "reviewer", "王审核")
    users.add_user("ops", PASSWORD, "ops", "赵运维")
    engine.dispose()  # folds SQLite's write-ahead log into the database file


def open_world(root: Path) -> World:
    """The services over a folder `seed` filled."""
    sessions = session_factory(make_engine(_db_url(root)))
    cases, users = CaseService(sessions), UserService(sessions)
    store = LocalObjectStore(root / "evidence")
    services = ReviewServices(
        cases=cases, users=users, store=store, secret_key=SECRET, points={POINT.id: POINT}, clock=lambda: NOW
    )
    ids = [c.id for c in cases.list_cases()]
    return World(services, cases, users, store, _db_url(root), ids)


def make_world(root: Path, n_cases: int) -> World:
    seed(root, n_cases)
    return open_world(root)


def make_staffed_world(root: Path, n_cases: int = 2) -> World:
    """`make_world` with a legal reviewer (wang), a supervisor (zhou) and an admin (root) beside the reviewer."""
    world = make_world(root, n_cases)
    for name, role in (("wang", "legal"), ("zhou", "supervisor"), ("root", "admin")):
        world.users.add_user(name, PASSWORD, role)
    return world
