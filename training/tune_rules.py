"""`feixian tune-rules`: choose the rules' settings for a detector on scenario videos with ground truth.

The best rule settings depend on the detector (how steadily it boxes a pile of goods, how often it calls
a clean truck uncovered), so a bureau that retrains its model re-tunes them. Detection and tracking
take nearly all of a replay's time and never depend on the rules, so the tracked detections each point's
rules see, with the frame's JPEG (the occupation rule dates an item revealed behind another from its
pixels), are recorded once, in one full-pipeline pass that also yields `feixian eval`'s figures for the
current settings. Every candidate setting then re-runs only the rules over that recording: seconds per
setting instead of minutes. Settings not named in the grid keep their values from `--config`.

    feixian tune-rules --model models/feixian-street-v15.onnx --scenarios data/tune/scenarios \\
        --config configs/default.yaml --grid vehicle.min_share=0.4,0.5,0.6 --grid vehicle.min_frames=6,8 \\
        --recording data/tune/v15.rec --out tune.json

The result ranks the settings by errors (false and missed events over both families); paste the best
one's `rules` into the settings file's `rules:` section.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated

import supervision as sv
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from cases.schema import case_to_json
from feixian.config import Config, ConfigError, Settings, load_points
from feixian.domain import Category, Point
from feixian.rule_settings import RuleSettings
from feixian.runtime import Runtime, replay
from pipeline.events import ViolationEvent
from pipeline.frames import Frame
from pipeline.rules import build_rules
from pipeline.worker import Rule, may_raise_case
from training.evaluate import (
    EvalError,
    deployment_settings,
    scenario_config,
    scenario_dirs,
    score_scenario,
    settings_for,
    summarise,
    write_json,
)

RECORDING_FORMAT = 2


class TuneError(EvalError):
    """A grid, recording or model that cannot be tuned on; the message says which and why."""


# What one point's rules saw: (frame seq, capture time, tracked detections, JPEG), in order.
Sightings = list[tuple[int, datetime, sv.Detections, bytes]]


@dataclass
class Recording:
    """The tracked detections of every point of every scenario, and what they were recorded with."""

    key: dict
    scenarios: dict[str, dict[str, Sightings]] = field(default_factory=dict)
    eval_rules: dict = field(default_factory=dict)  # the rules the recording pass ran with
    eval_families: dict = field(default_factory=dict)  # the full pipeline's figures with those rules

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(pickle.dumps({"format": RECORDING_FORMAT, "recording": self}))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, key: dict) -> Recording:
        """A recording made with `key` (model, thresholds, scenarios); anything else is refused.
        A recording is a pickle: load only ones this tool wrote."""
        try:
            data = pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as e:
            raise TuneError(f"{path}: not a readable recording ({e}); delete it to record again") from e
        if not isinstance(data, dict) or data.get("format") != RECORDING_FORMAT:
            raise TuneError(f"{path}: not a recording of this version; delete it to record again")
        rec = data["recording"]
        if rec.key != key:
            changed = sorted(k for k in key if rec.key.get(k) != key[k])
            raise TuneError(f"{path} was recorded with another {', '.join(changed)}; delete it to record again")
        return rec


class _Recorder:
    """A rule that raises nothing and keeps what the point's rules are shown."""

    def __init__(self, sightings: Sightings):
        self.sightings = sightings

    def update(self, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]:
        self.sightings.append((frame.seq, frame.captured_at, detections, frame.jpeg))
        return []

    def flush(self, at: datetime) -> list[ViolationEvent]:
        return []


class _RecordingRuntime(Runtime):
    """The deployment's pipeline, with a recorder beside each point's rules."""

    def __init__(self, config: Config, scenario: dict[str, Sightings]):
        super().__init__(config)
        self.scenario = scenario

    def make_rules(self, point: Point) -> list[Rule]:
        return [*super().make_rules(point), _Recorder(self.scenario.setdefault(point.id, []))]


def recording_key(model: Path, settings: Settings, dirs: list[Path]) -> dict:
    """What a recording depends on: the detector, its thresholds and class map, and the scenarios."""
    m = settings.model
    return {
        "model": hashlib.sha256(model.read_bytes()).hexdigest(),
        "thresholds": [m.conf_threshold, m.track_threshold, m.iou_threshold],
        "class map": m.class_map,
        "scenarios": [d.name for d in dirs],
    }


def record(model: Path, dirs: list[Path], settings: Settings) -> Recording:
    """Replay every scenario through the full pipeline (no plate reading: it never changes whether an
    event is raised), keeping what the rules see and scoring the cases as `feixian eval` does."""

    settings = settings.model_copy(update={"plates": settings.plates.model_copy(update={"model": None})})
    rec = Recording(recording_key(model, settings, dirs))
    scored = []
    with tempfile.TemporaryDirectory(prefix="feixian-tune-") as tmp:
        for d in tqdm(dirs, desc="record scenarios", unit="scenario"):
            config = scenario_config(d, settings, Path(tmp) / d.name)
            rt = _RecordingRuntime(config, rec.scenarios.setdefault(d.name, {}))
            result = replay(rt)
            if result.errors:
                raise TuneError(f"{d.name}: {result.errors}")
            scored.append(score_scenario(_scenario(d), [case_to_json(c) for c in rt.cases.all_cases()]))
    rec.eval_rules = settings.rules.model_dump()
    rec.eval_families = summarise(scored)
    return rec


def replay_rules(
    rec: Recording, dirs: list[Path], rules: RuleSettings, start_confidence: float, published: list[Category]
) -> dict[str, dict]:
    """The figures `feixian eval` would give with `rules`, from the recording alone."""
    scored = []
    for d in dirs:
        points = {p.id: p for p in load_points(d / "points.yaml")}
        cases: dict[str, dict] = {}
        for point_id, sightings in rec.scenarios[d.name].items():
            point = points[point_id]
            point_rules = build_rules(point, rules, start_confidence)
            events = [
                e
                for seq, at, detections, jpeg in sightings
                for rule in point_rules
                for e in _update(rule, Frame(point_id, seq, at, jpeg), detections)
            ]
            if sightings:
                events += [e for rule in point_rules for e in rule.flush(sightings[-1][1])]
            for e in events:
                if may_raise_case(e, point, published)[0]:
                    cases.setdefault(e.event_id, _case(e))  # a case per event id, as the case store keeps
        scored.append(score_scenario(_scenario(d), list(cases.values())))
    return summarise(scored)


def _update(rule: Rule, frame: Frame, detections: sv.Detections) -> list[ViolationEvent]:
    """One frame through one rule, its pixels dropped after as the worker drops them."""
    try:
        return rule.update(frame, detections)
    finally:
        frame.release_image()


def _scenario(d: Path) -> dict:
    return json.loads((d / "scenario.json").read_text(encoding="utf-8"))


def _case(e: ViolationEvent) -> dict:
    """The fields of a listed case that scoring reads."""

    def iso(t: datetime | None) -> str | None:
        return None if t is None else t.isoformat()

    return {
        "id": e.event_id,
        "category": e.category.value,
        "subtype": e.subtype,
        "zone_id": e.zone_id,
        "started_at": iso(e.started_at),
        "triggered_at": iso(e.triggered_at),
        "ended_at": iso(e.ended_at),
        "party": e.plate,
    }


def parse_grid(specs: list[str], base: RuleSettings) -> dict[str, list]:
    """`family.name=v1,v2` specs as {"family.name": [values]}, each value checked on its own."""
    grid: dict[str, list] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        family, dot, key = name.strip().partition(".")
        if not sep or not dot or not values.strip():
            raise TuneError(f"--grid {spec!r}: expected family.setting=value[,value...]")
        family_settings = getattr(base, family, None) if family in RuleSettings.model_fields else None
        if family_settings is None or key not in type(family_settings).model_fields:
            known = [f"{f}.{k}" for f in RuleSettings.model_fields for k in type(getattr(base, f)).model_fields]
            raise TuneError(f"--grid {spec!r}: no rule setting {name!r}; known: {', '.join(known)}")
        if name in grid:
            raise TuneError(f"--grid {name} given twice")
        # The field's own type and bounds; rules across fields are checked per combination.
        info = type(family_settings).model_fields[key]
        check = TypeAdapter(Annotated[info.annotation, info])
        parsed = []
        for raw in values.split(","):
            value = None if raw.strip().lower() in ("null", "none") else raw.strip()
            try:
                parsed.append(check.validate_python(value))
            except ValidationError as e:
                raise TuneError(f"--grid {name}={raw.strip()}: {e.errors()[0]['msg']}") from e
        grid[name] = parsed
    return grid


def candidates(grid: dict[str, list], base: RuleSettings) -> list[tuple[dict, RuleSettings | str]]:
    """Every combination of the grid over `base`: its settings, or why the combination is invalid."""
    out = []
    for combo in itertools.product(*grid.values()):
        chosen = dict(zip(grid, combo, strict=True))
        data = base.model_dump()
        for name, value in chosen.items():
            family, _, key = name.partition(".")
            data[family][key] = value
        try:
            out.append((chosen, RuleSettings.model_validate(data)))
        except ValidationError as e:
            out.append((chosen, "; ".join(err["msg"] for err in e.errors())))
    return out


def _errors(families: dict[str, dict]) -> int:
    return sum(f["fp"] + f["fn"] for f in families.values())


def _counts(families: dict[str, dict]) -> dict[str, list[int]]:
    return {fam: [f["tp"], f["fp"], f["fn"]] for fam, f in families.items()}


def tune(
    model: str | Path,
    scenarios_dir: str | Path,
    grid_specs: list[str],
    settings: Settings | None = None,
    recording: str | Path | None = None,
) -> dict:
    """Score every grid combination of rule settings; best (fewest false and missed events) first.
    With `recording`, the recorded detections are read from there if present, else saved there."""
    model = Path(model)
    run = settings_for(model, settings)
    base = run.rules
    grid = parse_grid(grid_specs, base)
    combos = candidates(grid, base)
    dirs = scenario_dirs(scenarios_dir)
    key = recording_key(model, run, dirs)
    rec_path = Path(recording) if recording else None
    if rec_path is not None and rec_path.exists():
        rec = Recording.load(rec_path, key)
    else:
        rec = record(model, dirs, run)
        if rec_path is not None:
            rec.save(rec_path)

    def replayed(rules: RuleSettings) -> dict[str, dict]:
        return replay_rules(rec, dirs, rules, run.model.conf_threshold, run.published_categories)

    base_families = replayed(base)
    results = []
    for chosen, rules in tqdm(combos, desc="rule settings", unit="setting"):
        if isinstance(rules, str):
            results.append({"set": chosen, "invalid": rules})
            continue
        families = replayed(rules)
        results.append({"set": chosen, "errors": _errors(families), "families": families, "rules": rules.model_dump()})
    valid = [r for r in results if "invalid" not in r]
    # Fewest errors; then the smallest start errors; then, stably, the grid's order.
    valid.sort(key=lambda r: (r["errors"], sum(f["start_error_s"]["max"] or 0 for f in r["families"].values())))
    return {
        "model": model.name,
        "scenarios": len(dirs),
        "recording": str(rec_path) if rec_path else None,
        "thresholds": {k: getattr(run.model, f"{k}_threshold") for k in ("conf", "track", "iou")},
        "base": {"rules": base.model_dump(), "replay": base_families},
        "recorded": {
            "rules": rec.eval_rules,
            "eval": rec.eval_families,
            # The rules replayed from the recording must give the full pipeline's figures, or the
            # ranking below describes something other than a deployment.
            "replay_matches_eval": _counts(replayed(RuleSettings.model_validate(rec.eval_rules)))
            == _counts(rec.eval_families),
        },
        "grid": grid,
        "results": valid + [r for r in results if "invalid" in r],
        "best": valid[0] if valid else None,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tune-rules", help="rank rule settings for a detector by event errors on scenario videos")
    p.add_argument("--model", required=True, help="ONNX detector")
    p.add_argument("--scenarios", required=True, help="folder of scenario folders (never the held-out ones)")
    p.add_argument("--config", default=None, help="settings YAML: thresholds, class map and the rules the grid varies")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FAMILY.SETTING=V1,V2",
        help="values to try for one rule setting, e.g. vehicle.min_share=0.4,0.5,0.6 (repeat for more); "
        "none: score the settings file's rules only",
    )
    p.add_argument("--recording", default=None, help="file for the recorded detections: read if present, else written")
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        if not Path(args.model).is_file():
            raise TuneError(f"model not found: {args.model}")
        result = tune(args.model, args.scenarios, args.grid, deployment_settings(args.config), args.recording)
    except (EvalError, ConfigError) as e:
        print(f"feixian tune-rules: {e}", file=sys.stderr)
        return 2
    write_json(result, args.out)
    for r in result["results"][:10]:
        summary = r.get("invalid") or f"errors {r['errors']}  TP/FP/FN {_counts(r['families'])}"
        print(f"{json.dumps(r['set'])}: {summary}", file=sys.stderr)
    return 0
