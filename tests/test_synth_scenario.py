"""Scenario ground truth: plan invariants, the written files, and the demo points."""

from __future__ import annotations

import argparse
import json
from itertools import pairwise
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from feixian.config import load_points
from pipeline.taxonomy import OCCUPATION_CLASSES
from training.synth.cli import register
from training.synth.frames import render_frame, scenario_backdrop
from training.synth.scenario import DEMO_SPECS, demo_points, write_scenario
from training.synth.timeline import EPISODE_GAP_S, ScenarioSpec, plan_scenario

REPO = Path(__file__).resolve().parents[1]
SPEC = ScenarioSpec(name="tiny", seed=7, duration_s=45, dwell_s=10)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenario") / SPEC.name
    write_scenario(SPEC, out, progress=False)
    return out


@pytest.mark.parametrize("kind", ["mixed", "street", "road"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plan_follows_the_ground_truth_rules(kind: str, seed: int) -> None:
    plan = plan_scenario(ScenarioSpec(name="p", seed=seed, kind=kind))
    spec = plan.spec
    actors = {a.id: a for a in plan.actors}
    for ep in plan.episodes:
        assert ep.end_s - ep.start_s > spec.dwell_s
        assert all(OCCUPATION_CLASSES[actors[i].sprite.label] == ep.subtype for i in ep.actor_ids)
        assert all(actors[i].motion.start >= ep.start_s and actors[i].motion.end >= ep.end_s for i in ep.actor_ids)
    for a in plan.episodes:
        for b in plan.episodes:
            if a is not b and (a.zone_id, a.subtype) == (b.zone_id, b.subtype):
                assert a.end_s + EPISODE_GAP_S <= b.start_s or b.end_s + EPISODE_GAP_S <= a.start_s
    for decoy in plan.decoys:
        if decoy.kind == "short_stay":
            assert decoy.end_s - decoy.start_s < spec.dwell_s
        if decoy.kind == "passing_cart":
            assert len(actors[decoy.actor_ids[0]].motion.waypoints) == 2  # pushed through, never stopping
    trips = sorted((actors[p.actor_id].motion.start, actors[p.actor_id].motion.end) for p in plan.passages)
    assert all(a[1] <= b[0] for a, b in pairwise(trips)), "vehicles overlap in time"
    if kind == "road":
        assert {p.kind for p in plan.passages} >= {"dirty", "uncovered", "clean", "covered", "car"}
    else:
        assert len(plan.episodes) >= 2


def test_scenario_json_matches_its_schema_and_video(written: Path) -> None:
    doc = json.loads((written / "scenario.json").read_text(encoding="utf-8"))
    assert set(doc) == {
        "name",
        "seed",
        "fps",
        "duration_s",
        "frame_size",
        "start_time",
        "point_id",
        "dwell_seconds",
        "zones",
        "events",
        "decoys",
        "tracks",
    }
    assert doc["fps"] == 5 and doc["frame_size"] == [640, 360] and doc["start_time"].endswith("Z")
    zone_ids = {z["id"] for z in doc["zones"]}
    track_ids = {t["id"] for t in doc["tracks"]}
    for ev in doc["events"]:
        assert 0 <= ev["start_s"] <= ev["end_s"] <= doc["duration_s"]
        assert ev["zone_id"] in zone_ids and set(ev["track_ids"]) <= track_ids
        if ev["category"] == "occupation":
            assert ev["subtype"] in ("stall", "shopfront", "goods") and ev["plate"] is None
            assert ev["dwell_cross_s"] == pytest.approx(ev["start_s"] + doc["dwell_seconds"])
        else:
            assert ev["subtype"] in ("dirty", "uncovered") and ev["dwell_cross_s"] is None and ev["plate"]
    for d in doc["decoys"]:
        assert 0 <= d["start_s"] <= d["end_s"] <= doc["duration_s"]
        assert d["zone_id"] is None or d["zone_id"] in zone_ids
    for t in doc["tracks"]:
        assert 0 <= t["first_s"] <= t["last_s"] < doc["duration_s"]
    with av.open(str(written / "video.mp4")) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 640, 360)
    assert frames == doc["duration_s"] * doc["fps"]


def test_points_yaml_validates_and_agrees_with_scenario(written: Path) -> None:
    doc = json.loads((written / "scenario.json").read_text(encoding="utf-8"))
    (point,) = load_points(written / "points.yaml")
    assert point.id == doc["point_id"] and point.dwell_seconds == doc["dwell_seconds"]
    assert point.source.kind == "file" and (written / point.source.uri).is_file()
    assert point.source.start_time.isoformat().replace("+00:00", "Z") == doc["start_time"]
    assert [(z.id, z.kind.value, [list(v) for v in z.polygon]) for z in point.zones] == [
        (z["id"], z["kind"], z["polygon"]) for z in doc["zones"]
    ]
    assert point.may_raise_cases(point.categories[0], point.calibration_valid_until) == (True, "ok")


def test_occupation_items_stand_inside_their_zone() -> None:
    """The pipeline tests a box's bottom-centre against the zone: every episode item must pass that test."""
    plan = plan_scenario(SPEC)
    backdrop = scenario_backdrop(plan)
    polygons = {z.id: np.float32(z.to_pixels(plan.cam)) for z in plan.zones}
    assert plan.episodes
    for ep in plan.episodes:
        k = int((ep.start_s + ep.end_s) / 2 * SPEC.fps)
        _, labels = render_frame(plan, backdrop, k)
        boxes = {actor_id: label.box for actor_id, label in labels}
        for actor_id in ep.actor_ids:
            if actor_id in boxes:  # an item may be hidden behind a passer-by in this frame
                x0, _, x1, y1 = boxes[actor_id]
                assert cv2.pointPolygonTest(polygons[ep.zone_id], ((x0 + x1) / 2, y1), False) >= 0


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError):
        ScenarioSpec(name="a b", seed=1)
    with pytest.raises(ValueError):
        ScenarioSpec(name="ok", seed=1, duration_s=5)


def test_demo_points_match_the_committed_registry() -> None:
    points = demo_points()
    assert [p.id for p in points] == ["JDZ-001", "GYQ-001"] and len(DEMO_SPECS) == 2
    assert {z.kind.value for z in points[0].zones} == {"no_occupation", "roadway"}
    registry = REPO / "configs" / "demo-points.yaml"
    if not registry.exists():
        pytest.skip("configs/demo-points.yaml not written yet")
    committed = {p.id: p for p in load_points(registry)}
    missing = [p.id for p in points if p.id not in committed]
    if missing:
        pytest.skip(f"configs/demo-points.yaml has no demo points {missing} yet")
    for p in points:
        assert committed[p.id].zones == p.zones, f"{p.id}: zones differ from the demo scenario"


def test_cli_writes_a_dataset(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["synth", "--seed", "3", "--out", str(tmp_path), "--images", "2", "--scenarios", "0", "--size", "320x180"]
    )
    assert args.func(args) == 0
    data = yaml.safe_load((tmp_path / "dataset" / "data.yaml").read_text())
    assert data["train"] == "images/train" and len(list(tmp_path.glob("dataset/labels/*/*.txt"))) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", str(tmp_path), "--size", "640by360"])
