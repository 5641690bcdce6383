"""`feixian eval --scenarios`: matching found events to ground truth, and a replay scored end to end."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_detector_onnx import anchors, const_model

from feixian.domain import Category, Point, Source, Zone
from pipeline.video import Mp4Writer
from training.evaluate import _Truth, evaluate_scenarios, match_events, score_scenario


def truth(start=10.0, end=60.0, anchor=40.0, subtype="shopfront", zone="front", category="occupation", plate=None):
    return _Truth(category, subtype, zone, start, end, anchor, plate)


def found(start=12.0, end=58.0, anchor=41.5, subtype="shopfront", zone="front", category="occupation", plate=None):
    return {
        "category": category,
        "subtype": subtype,
        "zone_id": zone,
        "start_s": start,
        "end_s": end,
        "anchor_s": anchor,
        "plate": plate,
    }


def test_a_matching_event_is_a_true_positive_with_its_start_error():
    r = match_events([truth()], [found()], [])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 0)
    assert r["start_errors_s"] == [pytest.approx(1.5)]
    assert r["unmatched_truth"] == [] and r["unmatched_found"] == []


def test_a_match_starting_more_than_ten_seconds_off_is_listed_as_late():
    on_time, late = found(anchor=49.9), found(start=30.0, anchor=50.5)
    assert match_events([truth()], [on_time], [])["late_starts"] == []
    r = match_events([truth()], [late], [])
    assert r["tp"] == 1
    assert [(e["zone_id"], e["anchor_s"], e["found_anchor_s"]) for e in r["late_starts"]] == [("front", 40.0, 50.5)]


@pytest.mark.parametrize(
    "other",
    [
        found(subtype="stall"),
        found(zone="side"),
        found(category="vehicle"),
        found(start=61.5, end=70.0),  # starts after the truth ended (beyond the 1 s slack)
    ],
)
def test_category_subtype_zone_and_time_must_all_agree(other):
    r = match_events([truth()], [other], [])
    assert (r["tp"], r["fp"], r["fn"]) == (0, 1, 1)
    assert r["unmatched_found"] == [other]
    assert r["unmatched_truth"][0]["subtype"] == "shopfront"


def test_a_second_report_of_one_violation_is_a_false_positive():
    better, partial = found(start=12.0, end=58.0, anchor=41.0), found(start=50.0, end=58.0, anchor=52.0)
    r = match_events([truth()], [partial, better], [])
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 0)
    assert r["start_errors_s"] == [pytest.approx(1.0)]  # the one overlapping most got the match
    assert r["unmatched_found"] == [partial]


def test_unmatched_events_on_a_decoy_are_counted():
    decoys = [
        {"kind": "short_stay", "zone_id": "front", "start_s": 100.0, "end_s": 130.0},
        {"kind": "passing_cart", "zone_id": None, "start_s": 200.0, "end_s": 210.0},
        {"kind": "loiterer", "zone_id": "side", "start_s": 300.0, "end_s": 340.0},
    ]
    events = [
        found(),  # matched: never a decoy event even though
        found(start=110.0, end=125.0),  # on the short stay
        found(start=205.0, end=207.0, zone="side"),  # on the zone-less passing cart
        found(start=310.0, end=320.0),  # overlaps the loiterer in time, but in another zone
    ]
    r = match_events([truth()], events, decoys)
    assert (r["tp"], r["fp"], r["decoy_events"]) == (1, 3, 2)


def test_plates_are_compared_when_the_truth_has_one():
    truths = [
        truth(category="vehicle", subtype="dirty", zone="road", plate="沪A12345"),
        truth(start=100, end=110, anchor=100, category="vehicle", subtype="dirty", zone="road", plate="沪B00001"),
        truth(start=200, end=210, anchor=200, category="vehicle", subtype="dirty", zone="road", plate="沪C00002"),
    ]
    events = [
        found(category="vehicle", subtype="dirty", zone="road", plate="沪A12345"),
        found(start=101, end=109, anchor=101, category="vehicle", subtype="dirty", zone="road", plate="沪B0000l"),
        found(start=201, end=209, anchor=201, category="vehicle", subtype="dirty", zone="road"),
    ]
    # (exact, read): read right, misread (l for 1), not read, which counts as wrong.
    assert Counter(match_events(truths, events, [], plates_read=True)["plates"]) == Counter(
        [(True, True), (False, True), (False, False)]
    )
    # A pipeline without a plate reader is not scored on plates at all.
    assert match_events(truths, events, [])["plates"] == []


def test_score_scenario_puts_cases_on_the_scenario_clock():
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    scenario = {
        "start_time": "2026-03-02T09:00:00Z",
        "events": [
            {
                "category": "occupation",
                "subtype": "goods",
                "zone_id": "front",
                "start_s": 20.0,
                "end_s": 90.0,
                "dwell_cross_s": 50.0,
                "plate": None,
            },
            {
                "category": "vehicle",
                "subtype": "uncovered",
                "zone_id": "road",
                "start_s": 5.0,
                "end_s": 12.0,
                "dwell_cross_s": None,
                "plate": "沪D55555",
            },
        ],
        "decoys": [],
    }

    def case(category, subtype, zone, started, triggered, ended, party):
        iso = lambda s: None if s is None else (start + timedelta(seconds=s)).isoformat()  # noqa: E731
        return {
            "id": 1,
            "category": category,
            "subtype": subtype,
            "zone_id": zone,
            "started_at": iso(started),
            "triggered_at": iso(triggered),
            "ended_at": iso(ended),
            "party": party,
        }

    cases = [
        case("occupation", "goods", "front", 21.0, 51.0, None, None),
        case("vehicle", "uncovered", "road", 5.4, 11.0, 11.0, "沪D55555"),
    ]
    r = score_scenario(scenario, cases, plates_read=True)
    assert r["occupation"]["tp"] == 1 and r["occupation"]["start_errors_s"] == [pytest.approx(1.0)]
    assert r["vehicle"]["tp"] == 1 and r["vehicle"]["start_errors_s"] == [pytest.approx(0.4)]
    assert r["vehicle"]["plates"] == [(True, True)]


SIZE = 64
DWELL_S = 5.0
VIDEO_S = 14.0


def write_scenario(folder: Path) -> None:
    """A still street (grey frames) with one occupation truth and one truck passage no model will see."""
    folder.mkdir(parents=True)
    with Mp4Writer(folder / "video.mp4", 10, (SIZE, SIZE)) as writer:
        for _ in range(int(VIDEO_S * 10)):
            writer.write(np.full((SIZE, SIZE, 3), 120, np.uint8))
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    point = Point(
        id="EVAL-1",
        name="n",
        town="t",
        device_id="d",
        gps=(31.0, 121.0),
        source=Source(kind="file", uri="video.mp4", start_time=start),
        announced_on=date(2024, 1, 1),
        legal_review=True,
        technical_review=True,
        zones=[
            Zone(id="front", kind="no_occupation", polygon=[(0, 30), (63, 30), (63, 63), (0, 63)]),
            Zone(id="road", kind="roadway", polygon=[(0, 0), (63, 0), (63, 29), (0, 29)]),
        ],
        categories=[Category.OCCUPATION, Category.VEHICLE],
        dwell_seconds=DWELL_S,
        detect_fps=5,
    )
    points = {"points": [point.model_dump(mode="json", exclude_none=True)]}
    (folder / "points.yaml").write_text(yaml.safe_dump(points, allow_unicode=True), encoding="utf-8")
    scenario = {
        "start_time": start.isoformat(),
        "events": [
            {
                "category": "occupation",
                "subtype": "shopfront",
                "zone_id": "front",
                "start_s": 0.0,
                "end_s": VIDEO_S,
                "dwell_cross_s": DWELL_S,
                "plate": None,
            },
            {
                "category": "vehicle",
                "subtype": "dirty",
                "zone_id": "road",
                "start_s": 2.0,
                "end_s": 6.0,
                "dwell_cross_s": None,
                "plate": "沪A12345",
            },
        ],
        "decoys": [],
    }
    (folder / "scenario.json").write_text(json.dumps(scenario, ensure_ascii=False), encoding="utf-8")


def test_replayed_scenarios_are_scored(tmp_path):
    # The model sees one chair standing in the shop-front zone in every frame, and nothing else.
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.9), nc=2)
    model = const_model(
        tmp_path / "chair.onnx", pred, ["person", "chair"], input_shape=(1, 3, SIZE, SIZE), feixian_version="t1"
    )
    write_scenario(tmp_path / "scenarios" / "still-street")
    r = evaluate_scenarios(model, tmp_path / "scenarios", work_dir=tmp_path / "work")
    assert r["scenarios"] == 1
    occ, veh = r["families"]["occupation"], r["families"]["vehicle"]
    assert (occ["tp"], occ["fp"], occ["fn"], occ["precision"], occ["recall"]) == (1, 0, 0, 1.0, 1.0)
    assert occ["start_error_s"]["max"] <= 0.2  # triggered on the first sampled frame past the dwell
    assert (veh["tp"], veh["fn"], veh["precision"], veh["recall"], veh["plate_exact"]) == (0, 1, None, 0.0, None)
    assert r["per_scenario"]["still-street"]["vehicle"]["unmatched_truth"][0]["plate"] == "沪A12345"
    assert r["decoy_events"] == 0


def test_scenarios_run_with_the_thresholds_of_a_settings_file(tmp_path, capsys):
    from feixian.cli import main

    # The chair scores 0.3: under the built-in start threshold (0.35), over the one in the settings file.
    pred = anchors((32.0, 45.0, 16.0, 20.0, 1, 0.3), nc=2)
    model = const_model(
        tmp_path / "chair.onnx", pred, ["person", "chair"], input_shape=(1, 3, SIZE, SIZE), feixian_version="t1"
    )
    write_scenario(tmp_path / "scenarios" / "still-street")
    settings = {
        "points_file": "scenarios/still-street/points.yaml",
        "model": {"path": "x.onnx", "conf_threshold": 0.25},
        "plates": {"model": str(Path(__file__).resolve().parents[1] / "models" / "feixian-plate-v2.onnx")},
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    argv = ["eval", "--model", str(model), "--scenarios", str(tmp_path / "scenarios")]
    for extra, tp in (([], 0), (["--config", str(tmp_path / "s.yaml")], 1)):
        assert main(argv + extra + ["--out", str(tmp_path / "r.json")]) == 0
        result = json.loads((tmp_path / "r.json").read_text())
        assert result["families"]["occupation"]["tp"] == tp
        assert result["thresholds"]["conf"] == (0.25 if extra else 0.35)
        assert result["plate_reader"] == ("feixian-plate-v2.onnx" if extra else None)
    assert main(argv + ["--config", str(tmp_path / "none.yaml")]) == 2
    assert "settings not found" in capsys.readouterr().err
