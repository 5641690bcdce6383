"""Scenario output: `video.mp4` (H.264, fixed camera), `scenario.json` (ground truth) and `points.yaml`.

Vehicle events and every track's first/last time come from the rendered labels (when the object is
actually visible, and for a violation, while its heap or mud is in view); occupation times come from the
plan (when items are put down and taken away).

>>> [p.id for p in demo_points()]
['JDZ-001', 'GYQ-001']
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from feixian.domain import Category, Point, Source, Zone
from pipeline.video import Mp4Writer
from training.synth.frames import render_frame, scenario_backdrop
from training.synth.scene import CLASS_ID
from training.synth.timeline import Plan, ScenarioSpec, plan_scenario

TOWNS = ("嘉定镇", "真新", "工业区")
EPOCH = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
VEHICLE_EVENT_KINDS = ("dirty", "uncovered")
DECOY_VEHICLE = {"clean": "clean_truck", "covered": "covered_truck", "car": "car"}

DEMO_SPECS = (
    ScenarioSpec(name="street", seed=20240101, kind="street"),
    ScenarioSpec(name="road", seed=20240102, kind="road"),
)
# Demo points: a shop street in Jiading town and a muck-truck route in the industrial zone.
_DEMO_POINTS = {"street": ("JDZ-001", "嘉定镇", "城中路 商铺门前"), "road": ("GYQ-001", "工业区", "叶城路 渣土车通道")}


def point_id(spec: ScenarioSpec) -> str:
    return _DEMO_POINTS[spec.name][0] if _is_demo(spec) else f"SYN-{spec.seed}"


def _is_demo(spec: ScenarioSpec) -> bool:
    return spec in DEMO_SPECS


def start_time(spec: ScenarioSpec) -> datetime:
    """Capture time of frame 0: daytime hours of a day picked by the seed, so replays are reproducible."""
    return EPOCH + timedelta(days=spec.seed % 300, hours=8 + spec.seed % 9, minutes=spec.seed % 60)


def scenario_point(plan: Plan) -> Point:
    """The camera point of a planned scenario, as `feixian.config` validates it."""
    spec = plan.spec
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 0x901]))
    zones = [Zone(id=z.id, kind=z.kind, polygon=[tuple(v) for v in z.to_pixels(plan.cam)]) for z in plan.zones]
    if _is_demo(spec):
        _, town, name = _DEMO_POINTS[spec.name]
    else:
        town, name = TOWNS[int(rng.integers(len(TOWNS)))], f"合成场景 {spec.name}"
    return Point(
        id=point_id(spec),
        name=name,
        town=town,
        device_id=f"CAM-{point_id(spec)}",
        gps=(round(31.37 + rng.uniform(-0.03, 0.03), 6), round(121.25 + rng.uniform(-0.03, 0.03), 6)),
        source=Source(kind="file", uri="video.mp4", start_time=start_time(spec)),
        announced_on=date(2024, 1, 1),
        legal_review=True,
        technical_review=True,
        in_service=True,
        calibration_valid_until=date(2030, 1, 1),
        zones=zones,
        categories=[Category.OCCUPATION, Category.VEHICLE],
        dwell_seconds=spec.dwell_s,
        detect_fps=spec.fps,
    )


def demo_points() -> list[Point]:
    """The points of the `--demo` scenarios (what configs/demo-points.yaml must agree with)."""
    return [scenario_point(plan_scenario(spec)) for spec in DEMO_SPECS]


def write_scenario(spec: ScenarioSpec, out_dir: Path, progress: bool = True) -> Path:
    """Render the scenario into `out_dir` and return the path of its scenario.json."""
    plan = plan_scenario(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    seen = _render_video(plan, out_dir / "video.mp4", progress)
    point = scenario_point(plan)
    doc = _ground_truth(plan, point, seen)
    target = out_dir / "scenario.json"
    target.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    points = {"points": [point.model_dump(mode="json", exclude_none=True)]}
    (out_dir / "points.yaml").write_text(yaml.safe_dump(points, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def _render_video(plan: Plan, path: Path, progress: bool) -> dict[int, list[tuple[float, int]]]:
    """Write the frames; return, per actor id, the (time, class id) of each frame it was labelled in."""
    spec = plan.spec
    backdrop = scenario_backdrop(plan)
    seen: dict[int, list[tuple[float, int]]] = {}
    with Mp4Writer(path, spec.fps, spec.size) as writer:
        n_frames = int(round(spec.duration_s * spec.fps))
        for k in tqdm(range(n_frames), desc=f"scenario {spec.name}", unit="frame", disable=not progress):
            img, labels = render_frame(plan, backdrop, k)
            writer.write(img)
            for actor_id, label in labels:
                seen.setdefault(actor_id, []).append((round(k / spec.fps, 3), label.class_id))
    return seen


def _ground_truth(plan: Plan, point: Point, seen: dict[int, list[tuple[float, int]]]) -> dict:
    spec = plan.spec
    road = next(z.id for z in plan.zones if z.kind == "roadway")
    events = [
        {
            "category": "occupation",
            "subtype": e.subtype,
            "zone_id": e.zone_id,
            "start_s": e.start_s,
            "end_s": e.end_s,
            "dwell_cross_s": round(e.start_s + spec.dwell_s, 3),
            "track_ids": e.actor_ids,
            "plate": None,
        }
        for e in plan.episodes
    ]
    decoys = [
        {"kind": d.kind, "zone_id": d.zone_id, "start_s": d.start_s, "end_s": d.end_s, "track_ids": d.actor_ids}
        for d in plan.decoys
    ]
    actors = {a.id: a for a in plan.actors}
    for passage in plan.passages:
        look = CLASS_ID[actors[passage.actor_id].sprite.label]
        # A violation is on record only while the frame shows it (heap or mud in view); a truck whose
        # load stays hidden is neither an event nor a decoy.
        times = [t for t, c in seen.get(passage.actor_id, ()) if c == look]
        if not times:
            continue
        if passage.kind in VEHICLE_EVENT_KINDS:
            events.append(
                {
                    "category": "vehicle",
                    "subtype": passage.kind,
                    "zone_id": road,
                    "start_s": times[0],
                    "end_s": times[-1],
                    "dwell_cross_s": None,
                    "track_ids": [passage.actor_id],
                    "plate": passage.plate,
                }
            )
        else:
            decoys.append(
                {
                    "kind": DECOY_VEHICLE[passage.kind],
                    "zone_id": road,
                    "start_s": times[0],
                    "end_s": times[-1],
                    "track_ids": [passage.actor_id],
                }
            )
    events.sort(key=lambda e: e["start_s"])
    decoys.sort(key=lambda d: d["start_s"])
    tracks = [
        {"id": a.id, "class": a.sprite.label, "first_s": seen[a.id][0][0], "last_s": seen[a.id][-1][0]}
        for a in plan.actors
        if a.id in seen
    ]
    return {
        "name": spec.name,
        "seed": spec.seed,
        "fps": spec.fps,
        "duration_s": spec.duration_s,
        "frame_size": list(spec.size),
        "start_time": start_time(spec).isoformat().replace("+00:00", "Z"),
        "point_id": point.id,
        "dwell_seconds": spec.dwell_s,
        "zones": [{"id": z.id, "kind": z.kind.value, "polygon": [list(v) for v in z.polygon]} for z in point.zones],
        "events": events,
        "decoys": decoys,
        "tracks": tracks,
    }
