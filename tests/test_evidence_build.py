"""EvidenceBuilder: stored files, hashes, the clip, untouched originals, idempotent rebuilds."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import av
import cv2
import numpy as np
import pytest

from cases.db import make_engine, session_factory, upgrade
from cases.manifest import sha256_hex
from cases.service import CaseService
from cases.store import LocalObjectStore, ObjectStore
from cases.verify import verify_all
from feixian.domain import Category, Point, Source, Zone
from pipeline.events import KeyFrame, ObjectSeen, ViolationEvent
from pipeline.evidence import EvidenceBuilder, EvidenceBundle, event_prefix
from pipeline.frames import Frame, decode_jpeg, encode_jpeg

T0 = datetime(2026, 3, 2, 23, 58, 0, tzinfo=UTC)
MODEL = {"name": "yolo11n-feixian", "version": "2026.03", "sha256": "c0" * 32, "input_size": [320, 320]}
THRESHOLDS = {"conf": 0.35, "iou": 0.5, "dwell_s": 180}
ZONE = Zone(id="front", kind="no_occupation", polygon=[(10, 30), (90, 30), (90, 58), (10, 58)])
POINT = Point(
    id="JDZ-001",
    name="博乐路 12 号",
    town="嘉定镇",
    device_id="cam-0007",
    gps=(31.3838, 121.2503),
    source=Source(kind="push"),
    zones=[ZONE],
    categories=[Category.OCCUPATION],
)


def make_frames(n: int, size: tuple[int, int] = (96, 64), point_id: str = POINT.id) -> list[Frame]:
    w, h = size
    frames = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :, 1] = 40 + 8 * i
        cv2.rectangle(img, (5 + 3 * i, 20), (25 + 3 * i, 50), (200, 200, 200), -1)
        frames.append(Frame(point_id, i, T0 + timedelta(seconds=i * 0.2), encode_jpeg(img)))
    return frames


def make_event(frames: list[Frame], details: dict | None = None) -> ViolationEvent:
    stall = ObjectSeen((20.0, 25.5, 48.0, 56.0), "stall", 0.874, track_id=3)
    return ViolationEvent(
        point_id=POINT.id,
        category=Category.OCCUPATION,
        subtype="stall",
        zone_id="front",
        started_at=frames[2].captured_at,
        triggered_at=frames[-3].captured_at,
        ended_at=None,
        objects=[stall],
        keyframes=[KeyFrame("first_seen", frames[2], [stall]), KeyFrame("after_dwell", frames[-3], [stall])],
        details=details if details is not None else {"dwell_s": np.float32(181.5), "frames_in_zone": np.int64(9)},
    )


class CountingStore:
    """A LocalObjectStore that counts puts and can refuse keys, to simulate a crash mid-build."""

    def __init__(self, inner: LocalObjectStore, fail_on: str | None = None):
        self.inner, self.fail_on, self.puts = inner, fail_on, 0

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail_on and key.endswith(self.fail_on):
            raise OSError("disk full")
        self.puts += 1
        self.inner.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)


@pytest.fixture
def store(tmp_path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "evidence")


@pytest.fixture
def builder(store) -> EvidenceBuilder:
    return EvidenceBuilder(store, MODEL, THRESHOLDS)


@pytest.fixture
def built(builder, store):
    frames = make_frames(12)
    event = make_event(frames)
    return event, frames, builder.build(event, POINT, frames, fps=5.0)


def manifest_of(store: ObjectStore, bundle: EvidenceBundle) -> dict:
    return json.loads(store.get(bundle.manifest_key))


def test_all_files_are_stored_under_the_event_folder(built, store):
    event, _, bundle = built
    prefix = f"evidence/JDZ-001/2026/03/02/{event.event_id}"
    assert event_prefix(event) == prefix
    assert bundle.keys == {
        "clip": f"{prefix}/clip.mp4",
        "original/first_seen": f"{prefix}/original/first_seen.jpg",
        "original/after_dwell": f"{prefix}/original/after_dwell.jpg",
        "annotated/first_seen": f"{prefix}/annotated/first_seen.jpg",
        "annotated/after_dwell": f"{prefix}/annotated/after_dwell.jpg",
        "manifest": f"{prefix}/manifest.json",
    }
    assert bundle.manifest_key == f"{prefix}/manifest.json"
    assert store.list(prefix + "/") == sorted(bundle.keys.values())


def test_manifest_hashes_match_the_stored_bytes(built, store):
    _, _, bundle = built
    raw = store.get(bundle.manifest_key)
    assert bundle.manifest_sha256 == sha256_hex(raw)
    files = json.loads(raw)["files"]
    assert set(files) == set(bundle.keys) - {"manifest"}
    for name, entry in files.items():
        data = store.get(entry["key"])
        assert entry["key"] == bundle.keys[name]
        assert (entry["size"], entry["sha256"]) == (len(data), sha256_hex(data))


def test_manifest_records_who_where_when_what_and_how(built, store):
    event, frames, bundle = built
    m = manifest_of(store, bundle)
    assert m["event_id"] == event.event_id
    assert m["point"] == {
        "id": "JDZ-001",
        "name": "博乐路 12 号",
        "town": "嘉定镇",
        "device_id": "cam-0007",
        "gps": {"lat": 31.3838, "lon": 121.2503},
    }
    assert (m["category"], m["subtype"], m["subtype_label"]["zh-CN"]) == ("occupation", "stall", "占道设摊")
    assert m["zone"] == {"id": "front", "kind": "no_occupation", "polygon": [[10, 30], [90, 30], [90, 58], [10, 58]]}
    assert m["times"] == {
        "started_at": "2026-03-02T23:58:00.400Z",
        "triggered_at": "2026-03-02T23:58:01.800Z",
        "ended_at": None,
    }
    assert m["party"] == {"plate": None}
    assert m["model"] == MODEL and m["thresholds"] == THRESHOLDS
    assert m["objects"] == [{"box": [20.0, 25.5, 48.0, 56.0], "class": "stall", "confidence": 0.874, "track_id": 3}]
    assert [(k["label"], k["seq"], k["captured_at"]) for k in m["keyframes"]] == [
        ("first_seen", 2, "2026-03-02T23:58:00.400Z"),
        ("after_dwell", 9, "2026-03-02T23:58:01.800Z"),
    ]
    assert m["rule"] == {"dwell_s": 181.5, "frames_in_zone": 9}
    assert m["clip"] == {
        "frames": 12,
        "fps": 5.0,
        "first_frame_at": "2026-03-02T23:58:00.000Z",
        "last_frame_at": "2026-03-02T23:58:02.200Z",
        "duration_s": 2.2,
    }


def test_clip_decodes_to_every_clip_frame(built, store):
    _, frames, bundle = built
    with av.open(io.BytesIO(store.get(bundle.keys["clip"]))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(decoded) == len(frames)
    assert decoded[0].shape == (64, 96, 3)
    # The frames are in order: the grey block moves right by 3 px a frame.
    first, last = decode_jpeg(frames[0].jpeg), decode_jpeg(frames[-1].jpeg)
    assert np.abs(decoded[0].astype(int) - first).mean() < np.abs(decoded[0].astype(int) - last).mean()


def test_originals_are_the_untouched_frame_jpegs_and_annotations_are_separate(built, store):
    event, _, bundle = built
    for kf in event.keyframes:
        original = store.get(bundle.keys[f"original/{kf.label}"])
        annotated = store.get(bundle.keys[f"annotated/{kf.label}"])
        assert original == kf.frame.jpeg
        drawn = decode_jpeg(annotated).astype(int)
        plain = decode_jpeg(original).astype(int)
        assert drawn.shape == plain.shape
        # The box's left and right edges (red) and the zone's top edge (amber) are on the copy only;
        # pixels away from them are unchanged.
        for y, x in [(40, 20), (40, 48)]:
            assert drawn[y, x, 2] - drawn[y, x, 1] > 50 and plain[y, x, 2] - plain[y, x, 1] < 20
        assert drawn[30, 70, 2] > 150 and plain[30, 70, 2] < 30
        assert np.abs(drawn[45, 60] - plain[45, 60]).max() < 15


def test_second_build_is_a_no_op(tmp_path):
    counting = CountingStore(LocalObjectStore(tmp_path / "evidence"))
    builder = EvidenceBuilder(counting, MODEL, THRESHOLDS)
    frames = make_frames(8)
    event = make_event(frames)
    first = builder.build(event, POINT, frames, fps=5.0)
    puts, stored = counting.puts, {k: counting.get(k) for k in counting.list()}
    again = builder.build(event, POINT, frames[:3], fps=2.0)
    assert again == first
    assert counting.puts == puts == 6
    assert {k: counting.get(k) for k in counting.list()} == stored


def test_a_build_interrupted_before_the_manifest_completes_on_retry(tmp_path):
    inner = LocalObjectStore(tmp_path / "evidence")
    frames = make_frames(8)
    event = make_event(frames)
    with pytest.raises(OSError, match="disk full"):
        EvidenceBuilder(CountingStore(inner, fail_on="manifest.json"), MODEL, THRESHOLDS).build(
            event, POINT, frames, 5.0
        )
    retry = CountingStore(inner)
    bundle = EvidenceBuilder(retry, MODEL, THRESHOLDS).build(event, POINT, frames, 5.0)
    assert retry.puts == 1  # only the manifest; the stored files are reused
    for entry in manifest_of(inner, bundle)["files"].values():
        assert sha256_hex(inner.get(entry["key"])) == entry["sha256"]


def test_bundle_opens_a_case_that_verifies(built, store, tmp_path):
    event, _, bundle = built
    url = f"sqlite:///{tmp_path / 'feixian.db'}"
    upgrade(url)
    sessions = session_factory(make_engine(url))
    record = bundle.to_new_case(event, POINT)
    assert (record.event_id, record.point_id, record.device_id, record.gps) == (
        event.event_id,
        "JDZ-001",
        "cam-0007",
        (31.3838, 121.2503),
    )
    assert (record.category, record.subtype, record.zone_id, record.confidence) == (
        "occupation",
        "stall",
        "front",
        0.874,
    )
    assert (record.evidence, record.manifest_key, record.manifest_sha256) == (
        bundle.keys,
        bundle.manifest_key,
        bundle.manifest_sha256,
    )
    case, created = CaseService(sessions).open_case(record)
    assert created and case.triggered_at == event.triggered_at
    report = verify_all(sessions, store)
    assert report.ok and report.files_checked == 5


def test_odd_frame_sizes_are_padded_for_h264(builder, store):
    frames = make_frames(6, size=(95, 63))
    bundle = builder.build(make_event(frames), POINT, frames, fps=5.0)
    with av.open(io.BytesIO(store.get(bundle.keys["clip"]))) as container:
        first = next(container.decode(video=0))
    assert (first.width, first.height) == (96, 64)
    assert store.get(bundle.keys["original/first_seen"]) == frames[2].jpeg


def test_bad_inputs_are_refused_before_anything_is_stored(builder, store):
    frames = make_frames(6)
    event = make_event(frames)
    cases = [
        (dict(point=POINT.model_copy(update={"zones": []})), "zone 'front' is not defined"),
        (dict(clip_frames=[]), "no clip frames"),
        (dict(clip_frames=make_frames(3, point_id="JDZ-009")), "frames of other points"),
        (dict(fps=0.0), "fps must be positive"),
        (dict(point=POINT.model_copy(update={"id": "JDZ-002"})), "event of point JDZ-001"),
    ]
    for override, why in cases:
        args = dict(event=event, point=POINT, clip_frames=frames, fps=5.0) | override
        with pytest.raises(ValueError, match=why):
            builder.build(**args)
    event.keyframes.append(KeyFrame("first_seen", frames[0], []))
    with pytest.raises(ValueError, match="duplicate key frame labels"):
        builder.build(event, POINT, frames, 5.0)
    event.keyframes[-1] = KeyFrame("../best", frames[0], [])
    with pytest.raises(ValueError, match="'..' is not allowed"):
        builder.build(event, POINT, frames, 5.0)
    assert store.list() == []


def test_model_info_must_name_the_model(store):
    with pytest.raises(ValueError, match="sha256"):
        EvidenceBuilder(store, {"name": "m", "version": "1"}, THRESHOLDS)


def test_unserialisable_rule_details_fail_before_anything_is_stored(builder, store):
    frames = make_frames(6)
    with pytest.raises(TypeError, match="rule detail of type object"):
        builder.build(make_event(frames, details={"x": object()}), POINT, frames, 5.0)
    assert store.list() == []
