"""OccupationRule dating an item revealed behind another from its pixels (painted frames, 1 fps).

A stool is put out at 0 s; a stack of crates goes behind it at 20 s, its top showing above the seat and
its left side beside it. The detector boxes stool and crates as one chair until the stool leaves at
60 s, then names the crates goods.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest
from test_rules_occupation import DWELL, POINT, T0, at, dets

from cases.store import EvidenceSettings, LocalObjectStore
from feixian.domain import Category
from feixian.rule_settings import RuleSettings
from pipeline.evidence import EvidenceBuilder
from pipeline.frames import Frame, encode_jpeg
from pipeline.rules import OccupationRule, OccupationRuleSettings, build_rules
from pipeline.stillness import StillnessMap
from pipeline.worker import PointWorker

STOOL_AT = (150, 180, 180, 220)
CRATES_AT = (140, 160, 175, 205)
STOOL = (*map(float, STOOL_AT), "chair")
STOOL_AND_CRATES = (142.0, 165.0, 180.0, 220.0, "chair")  # IoU 0.57 with STOOL: the same item moving
CRATES = (*map(float, CRATES_AT), "goods")
CRATES_PUT_DOWN, STOOL_LEAVES = 20, 60


def paint(crates: bool, stool: bool) -> bytes:
    image = np.full((240, 320, 3), 128, np.uint8)
    if crates:
        x1, y1, x2, y2 = CRATES_AT
        image[y1:y2, x1:x2] = (200, 60, 20)
    if stool:  # in front of the crates
        x1, y1, x2, y2 = STOOL_AT
        image[y1:y2, x1:x2] = (30, 200, 230)
    return encode_jpeg(image)


def crates_revealed(s: int) -> tuple[bytes, list]:
    crates, stool = s >= CRATES_PUT_DOWN, s < STOOL_LEAVES
    boxes = [STOOL_AND_CRATES if crates else STOOL] if stool else [CRATES] if crates else []
    return paint(crates, stool), boxes


def run(script, seconds: int, rule: OccupationRule):
    events = []
    for s in range(seconds):
        jpeg, rows = script(s)
        frame = Frame(POINT.id, s, T0 + timedelta(seconds=s), jpeg)
        events += rule.update(frame, dets(rows))
        frame.release_image()
    return events


def with_pixels(**settings) -> OccupationRule:
    return OccupationRule(POINT, OccupationRuleSettings(**settings), stillness=StillnessMap(settle_s=3.0))


def test_crates_revealed_behind_a_stool_are_dated_from_when_they_were_put_down():
    events = run(crates_revealed, 120, with_pixels())
    goods = [e for e in events if e.subtype == "goods"]
    assert [e.started_at for e in goods] == [at(CRATES_PUT_DOWN)]
    # Due since 50 s, so raised at their fifth confident sighting (confirm_frames), 60-64 s.
    assert goods[0].triggered_at == at(STOOL_LEAVES + 4)
    assert goods[0].details["dated_from"] == "pixels"
    assert goods[0].details["named_at"] == at(STOOL_LEAVES).isoformat()
    assert goods[0].keyframes[0].frame.seq == STOOL_LEAVES  # what the detector saw when it named them
    assert [(e.subtype, e.started_at) for e in events if e.subtype != "goods"] == [("shopfront", at(0))]


def test_without_pixels_the_same_crates_count_from_when_they_were_named():
    events = run(crates_revealed, 120, OccupationRule(POINT))
    goods = [e for e in events if e.subtype == "goods"]
    assert [(e.started_at, e.triggered_at) for e in goods] == [(at(STOOL_LEAVES), at(STOOL_LEAVES + DWELL))]
    assert "dated_from" not in goods[0].details


def test_goods_put_down_as_the_stool_is_taken_away_count_from_their_arrival():
    def swap(s: int):
        crates, stool = s >= STOOL_LEAVES, s < STOOL_LEAVES
        return paint(crates, stool), [STOOL] if stool else [CRATES]

    events = run(swap, 120, with_pixels())
    assert [(e.subtype, e.started_at) for e in events] == [("shopfront", at(0)), ("goods", at(STOOL_LEAVES))]


def test_nothing_is_revealed_while_the_item_in_front_is_still_seen():
    # The detector splits off the crates at 60 s but goes on boxing the stool, which never leaves.
    def split(s: int):
        crates = s >= CRATES_PUT_DOWN
        rows = [STOOL_AND_CRATES if crates else STOOL] + ([CRATES] if s >= STOOL_LEAVES else [])
        return paint(crates, True), rows

    events = run(split, 120, with_pixels())
    goods = [e for e in events if e.subtype == "goods"]
    assert [e.started_at for e in goods] == [at(STOOL_LEAVES)]


def test_an_item_whose_box_looks_as_it_did_when_the_one_in_front_came_is_not_backdated():
    # The crates were there before the stool: what shows of them dates from before the stool was named.
    def behind_from_the_start(s: int):
        stool = s < STOOL_LEAVES
        return paint(True, stool), [STOOL_AND_CRATES] if stool else [CRATES]

    events = run(behind_from_the_start, 120, with_pixels())
    goods = [e for e in events if e.subtype == "goods"]
    assert [e.started_at for e in goods] == [at(STOOL_LEAVES)]


@pytest.mark.parametrize("date_revealed", [True, False])
def test_the_runtime_builds_the_rule_with_pixels_unless_switched_off(date_revealed: bool):
    settings = RuleSettings.model_validate({"occupation": {"date_revealed": date_revealed}})
    point = POINT.model_copy(update={"categories": [Category.OCCUPATION]})
    (rule,) = build_rules(point, settings, 0.35)
    assert (rule.stillness is not None) == date_revealed


class Scripted:
    """Boxes what `crates_revealed` painted (the detector is not under test here)."""

    def __init__(self):
        self.calls = 0

    def detect(self, image):
        rows = crates_revealed(self.calls)[1]
        self.calls += 1
        return dets(rows)


class NoTracker:
    def update(self, detections, at):
        return detections


def test_the_evidence_shows_the_revealed_item_when_it_was_put_down(tmp_path):
    point = POINT.model_copy(
        update={
            "categories": [Category.OCCUPATION],
            "announced_on": date(2026, 1, 1),
            "legal_review": True,
            "technical_review": True,
        }
    )
    filed = []
    worker = PointWorker(
        point,
        Scripted(),
        NoTracker(),
        build_rules(point, RuleSettings(), 0.35),
        EvidenceBuilder(LocalObjectStore(tmp_path), {"name": "m", "version": "1", "sha256": "ab" * 32}, {}),
        lambda event, bundle: filed.append((event, bundle)),
        EvidenceSettings(pre_roll_s=1, post_roll_s=1),
        [Category.OCCUPATION],
    )
    for s in range(90):
        worker.process(Frame(point.id, s, T0 + timedelta(seconds=s), crates_revealed(s)[0]))
    worker.flush()
    ((goods, bundle),) = [(e, b) for e, b in filed if e.subtype == "goods"]
    assert [(k.label, k.frame.seq) for k in goods.keyframes] == [
        ("stood_since", CRATES_PUT_DOWN),
        ("first_seen", STOOL_LEAVES),
        ("after_dwell", STOOL_LEAVES + 4),
    ]
    manifest = json.loads((tmp_path / bundle.manifest_key).read_bytes())
    assert [k["label"] for k in manifest["keyframes"]] == ["stood_since", "first_seen", "after_dwell"]
    assert "original/stood_since" in manifest["files"]
    ((shopfront, _),) = [(e, b) for e, b in filed if e.subtype == "shopfront"]
    assert [k.label for k in shopfront.keyframes] == ["first_seen", "after_dwell"]


def test_crates_put_behind_the_stool_just_before_it_leaves_count_from_when_they_were_named():
    # Shown 2 s before the stool's last sighting: less than a new look takes to count (pixel_settle_s).
    def late(s: int):
        crates, stool = s >= STOOL_LEAVES - 2, s < STOOL_LEAVES
        boxes = [STOOL_AND_CRATES if crates else STOOL] if stool else [CRATES]
        return paint(crates, stool), boxes

    events = run(late, 120, with_pixels())
    assert [(e.subtype, e.started_at) for e in events] == [("shopfront", at(0)), ("goods", at(STOOL_LEAVES))]


def test_a_sub_stream_camera_dates_them_alike_without_decoding_its_main_stream():
    """A camera whose main stream is twice the size of its sub-stream (the painted frames): the rule sees boxes
    and zones in the main stream's pixels and feeds the stillness map the sub-stream image the detector already
    decoded."""
    import cv2

    from feixian.domain import Zone
    from pipeline.frames import decode_jpeg

    zones = [Zone(id=z.id, kind=z.kind, polygon=[(2 * x, 2 * y) for x, y in z.polygon]) for z in POINT.zones]
    point = POINT.model_copy(update={"zones": zones})
    rule = OccupationRule(point, OccupationRuleSettings(), stillness=StillnessMap(settle_s=3.0))
    events, main_decoded = [], 0
    for s in range(120):
        sub, rows = crates_revealed(s)
        main = encode_jpeg(cv2.resize(decode_jpeg(sub), (640, 480), interpolation=cv2.INTER_NEAREST))
        frame = Frame(POINT.id, s, T0 + timedelta(seconds=s), main, detect_jpeg=sub)
        events += rule.update(frame, dets([(*(2 * v for v in row[:4]), row[4]) for row in rows]))
        main_decoded += frame._image is not None
        frame.release_image()
    goods = [e for e in events if e.subtype == "goods"]
    assert [e.started_at for e in goods] == [at(CRATES_PUT_DOWN)]
    assert goods[0].details["dated_from"] == "pixels"
    assert main_decoded == 0
