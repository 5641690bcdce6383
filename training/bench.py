"""`feixian bench`: how fast the deployed pipeline runs on this machine, and what the motion gate costs in events,
as JSON (`make bench`; issue 26).

In one run, over the frames each scenario's point takes at its detect rate, with a settings file's model,
thresholds, rules and plate reader:
- `detector_ms`: `OnnxDetector.detect` alone (letterbox, inference, NMS) on those frames, decoded beforehand;
- `pipeline_fps` / `pipeline_fps_ungated`: frames a second of whole replays (decode, motion gate, detect, track,
  rules, evidence, cases in a throw-away SQLite database) of all the scenarios at once, as the points of one
  deployment, with the gate on and with every frame detected;
- `baseline_fps`: the loop a user writes by hand, Ultralytics `YOLO(model).track(frame, persist=True)`, on the same
  decoded frames (null, with `baseline_error`, where Ultralytics or its tracker cannot be loaded);
- `event_recall_gated` / `event_recall_every_frame`: the replays' cases scored against the scenarios' ground truth
  (`training.evaluate.score_scenario`; null where the scenarios hold no event);
- `points_realtime_2fps`: points sampled at 2 frames a second that the throughput of a fleet run keeps up with:
  76 points (the scenarios' points in turn) at 2 frames a second each, replayed at once by one runtime
  (`fleet` in the JSON);
- `points_realtime_2fps_without_network`: the same fleet run with a detector that finds nothing at no cost
  (`NetworkFree`): what decoding, the gate, tracking, rules and the bus cost alone, so the most points any faster
  network could let this machine hold (`fleet.without_network`);
- `peak_rss_mb`: the process's peak resident memory after the replays and the fleet run (before Ultralytics
  and PyTorch load).

The figures depend on the machine and on what else runs on it: `machine` records the CPUs and the load average at
the start beside them. Use held-out scenarios (`make bench`: seed 4001, never trained or tuned on).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from tqdm import tqdm

from cases.schema import case_to_json
from feixian.config import Config, ConfigError, Settings, load_config, load_points
from pipeline.detector import no_detections
from training.evaluate import (
    EvalError,
    deployment_settings,
    latency_ms,
    model_facts,
    scenario_config,
    scenario_dirs,
    scenario_runtime,
    score_scenario,
    settings_for,
    summarise,
    write_json,
)

REALTIME_FPS = 2.0  # the bureau samples its points at 2 frames a second
BUREAU_POINTS = 76  # the points the bureau has announced (DESIGN.md)


@dataclass
class ReplayRun:
    """Whole-pipeline replays of every scenario with the gate on or off."""

    frames: int
    gated: int
    seconds: float
    recall: float | None
    families: dict[str, dict]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def with_gate(settings: Settings, enabled: bool) -> Settings:
    """`settings` with the motion gate turned on or off, its other motion settings kept."""
    return settings.model_copy(update={"motion": settings.motion.model_copy(update={"enabled": enabled})})


def pipeline_frames(scenario_dir: Path, settings: Settings, data_dir: Path, limit: int) -> list[np.ndarray]:
    """Up to `limit` decoded frames of the scenario's file points, exactly those a replay takes."""
    rt = scenario_runtime(scenario_dir, settings, data_dir)
    images: list[np.ndarray] = []
    for point in rt.config.points:
        source = rt.source_for(point, realtime=False)
        if source is None:
            continue
        for frame in source.frames():
            if len(images) >= limit:
                return images
            images.append(frame.image())
    if not images:
        raise EvalError(f"{scenario_dir}: no frames could be decoded")
    return images


def time_detector(detector, frames: list[list[np.ndarray]], bar: tqdm) -> list[float]:
    """Seconds per `detector.detect` call over every frame (one untimed call first: it allocates buffers)."""
    detector.detect(frames[0][0])
    seconds = []
    for images in frames:
        for image in images:
            t0 = time.perf_counter()
            detector.detect(image)
            seconds.append(time.perf_counter() - t0)
            bar.update()
    return seconds


def replay_all(dirs: list[Path], settings: Settings, work: Path, bar: tqdm) -> ReplayRun:
    """Replay every scenario through the whole pipeline (`feixian replay`'s), all at once as the points of one
    deployment run side by side, and score each one's cases."""
    from feixian.runtime import replay

    runtimes = [scenario_runtime(d, settings, work / d.name) for d in dirs]
    for rt in runtimes:
        _ = rt.detector, rt.plate_reader, rt.cases  # loading models and migrating the database is not throughput
    results: dict[int, object] = {}

    def run(k: int) -> None:
        results[k] = replay(runtimes[k])
        bar.update()

    threads = [threading.Thread(target=run, args=(k,), name=f"bench-{d.name}") for k, d in enumerate(dirs)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    frames = gated = 0
    scored = []
    for k, (d, rt) in enumerate(zip(dirs, runtimes, strict=True)):
        result = results.get(k)
        if result is None or result.errors:
            raise EvalError(f"{d.name}: replay failed: {getattr(result, 'errors', 'no result')}")
        frames += sum(s.frames for s in result.stats.values())
        gated += sum(s.gated for s in result.stats.values())
        truth = json.loads((d / "scenario.json").read_text(encoding="utf-8"))
        cases = [case_to_json(c) for c in rt.cases.all_cases()]
        scored.append(score_scenario(truth, cases, plates_read=rt.plate_reader is not None))
    families = summarise(scored)
    tp = sum(f["tp"] for f in families.values())
    truths = tp + sum(f["fn"] for f in families.values())
    return ReplayRun(frames, gated, seconds, tp / truths if truths else None, families)


class NetworkFree:
    """A stand-in for a detector that finds nothing and costs nothing, everything else passed through: with it a
    replay measures the pipeline around the network.

    >>> class Named:
    ...     class_names = ("person", "chair")
    >>> free = NetworkFree(Named())
    >>> found = free.detect_regions(None, [(0, 0, 32, 32)])
    >>> len(found), found.data["class_name"].tolist(), free.class_names
    (0, [], ('person', 'chair'))
    """

    def __init__(self, detector):
        self.detector = detector

    def detect(self, image, **options) -> sv.Detections:
        return no_detections()

    def detect_regions(self, image, rects, **options) -> sv.Detections:
        return no_detections()

    def __getattr__(self, name: str):
        return getattr(self.detector, name)


@dataclass
class FleetRun:
    """`points` points at `fps` frames a second, all replayed at once in one runtime."""

    points: int
    fps: float
    frames: int
    seconds: float
    peak_rss_mb: float
    cases: int

    @property
    def frames_per_s(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict:
        return {
            "points": self.points,
            "fps_per_point": self.fps,
            "frames": self.frames,
            "seconds": round(self.seconds, 2),
            "frames_per_s": round(self.frames_per_s, 2),
            "realtime": self.frames_per_s >= self.points * self.fps,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "cases": self.cases,
        }


def fleet(dirs: list[Path], settings: Settings, work: Path, points: int, fps: float, network: bool = True) -> FleetRun:
    """The bureau's load in one process: `points` points (the scenarios' points in turn, each a copy with its
    own id) sampled at `fps`, replayed at once through one runtime as `feixian run` runs them, and the
    process's peak memory after it; `network=False`: with `NetworkFree` in place of the settings' detector."""
    from feixian.runtime import Runtime, replay

    originals = [(d, p) for d in dirs for p in load_points(d / "points.yaml") if p.source.kind == "file"]
    if not originals:
        raise EvalError("the scenarios hold no file point to replay")
    copies = []
    for k in range(points):
        d, p = originals[k % len(originals)]
        source = p.source.model_copy(update={"uri": str((d / p.source.uri).resolve())})
        copies.append(p.model_copy(update={"id": f"P{k:03d}-{p.id}"[:32], "detect_fps": fps, "source": source}))
    config = scenario_config(dirs[0], settings, work)
    rt = Runtime(Config(config.settings, copies, config.base_dir, work, work, database_url=config.database_url))
    if not network:
        rt.detector = NetworkFree(rt.detector)
    _ = rt.detector, rt.plate_reader, rt.cases
    t0 = time.perf_counter()
    result = replay(rt)
    seconds = time.perf_counter() - t0
    if result.errors:
        raise EvalError(f"fleet replay failed: {result.errors}")
    frames = sum(s.frames for s in result.stats.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return FleetRun(points, fps, frames, seconds, rss_mb, len(rt.cases.all_cases()))


def baseline(
    model: Path, imgsz: tuple[int, int], frames: list[list[np.ndarray]], bar: tqdm
) -> tuple[float | None, str]:
    """Frames a second of Ultralytics' `YOLO(model).track(frame, persist=True)` over each scenario's frames (one
    model, so one tracker, a scenario), or None and why it could not run."""
    # Never let Ultralytics pip-install a missing tracker dependency in the middle of a measurement.
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_OFFLINE", "true")
    try:
        from ultralytics import YOLO
    except ImportError as e:
        return None, f"ultralytics is not installed (the train extra: pip install -e '.[train]'): {e}"
    n, seconds = 0, 0.0
    try:
        for images in frames:
            yolo = YOLO(str(model), task="detect")
            yolo.track(images[0], persist=True, imgsz=list(imgsz), verbose=False)  # untimed: loads and warms up
            t0 = time.perf_counter()
            for image in images:
                yolo.track(image, persist=True, imgsz=list(imgsz), verbose=False)
                bar.update()
            seconds += time.perf_counter() - t0
            n += len(images)
    except Exception as e:  # a broken optional dependency must not cost the pipeline's figures
        return None, f"Ultralytics tracking failed: {type(e).__name__}: {e}"
    return n / seconds, ""


def machine_facts() -> dict:
    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "onnxruntime": installed("onnxruntime"),
        "opencv": cv2.__version__,
        "ultralytics": installed("ultralytics"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench(
    config: str | Path, scenarios_dir: str | Path, frames: int = 300, points: int = BUREAU_POINTS, progress: bool = True
) -> dict:
    """Every figure of the module docstring; `frames`: at most this many frames a scenario for the detector and
    baseline timings (the replays take every frame); `points`: how many points the fleet run holds."""
    machine = machine_facts()
    deployed = deployment_settings(str(config))
    model = load_config(config).model_path
    settings = settings_for(model, deployed)
    dirs = scenario_dirs(scenarios_dir)
    with tempfile.TemporaryDirectory(prefix="feixian-bench-") as tmp:
        work = Path(tmp)
        bar = _bar("pipeline, gated and every frame", 2 * len(dirs), progress, unit="replay")
        gated = replay_all(dirs, with_gate(settings, True), work / "gated", bar)
        every = replay_all(dirs, with_gate(settings, False), work / "every", bar)
        bar.close()
        bar = _bar(f"{points} points at {REALTIME_FPS:g} fps", 1, progress, unit="run")
        fleet_run = fleet(dirs, settings, work / "fleet", points, REALTIME_FPS)
        bar.update()
        bar.close()
        bar = _bar(f"{points} points at {REALTIME_FPS:g} fps, no network", 1, progress, unit="run")
        free_run = fleet(dirs, settings, work / "fleet-free", points, REALTIME_FPS, network=False)
        bar.update()
        bar.close()
        # Read here: the decoded frames held for the timings below, and PyTorch (Ultralytics), are no part of
        # feixian's runtime.
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sample = [pipeline_frames(d, settings, work / "frames" / d.name, frames) for d in dirs]
        n = sum(len(images) for images in sample)
        detector = scenario_runtime(dirs[0], settings, work / "detector").detector
        bar = _bar("detector", n, progress)
        latencies = time_detector(detector, sample, bar)
        bar.close()
        bar = _bar("baseline: Ultralytics track()", n, progress)
        h, w = sample[0][0].shape[:2]
        baseline_fps, baseline_error = baseline(model, detector.input_shape_for(h, w), sample, bar)
        bar.close()
    return {
        "detector_ms": latency_ms(latencies)["mean"],
        "pipeline_fps": round(gated.fps, 2),
        "pipeline_fps_ungated": round(every.fps, 2),
        "baseline_fps": None if baseline_fps is None else round(baseline_fps, 2),
        "baseline_error": baseline_error or None,
        "speedup_vs_baseline": None if not baseline_fps else round(gated.fps / baseline_fps, 2),
        "event_recall_gated": _rounded(gated.recall),
        "event_recall_every_frame": _rounded(every.recall),
        "points_realtime_2fps": int(fleet_run.frames_per_s // REALTIME_FPS),
        "points_realtime_2fps_without_network": int(free_run.frames_per_s // REALTIME_FPS),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "fleet": fleet_run.summary() | {"without_network": free_run.summary()},
        "model": model_facts(detector, model),
        "machine": machine,
        "detector": {
            "frames": len(latencies),
            "frame": [h, w],
            "input": list(detector.input_shape_for(h, w)),
            "latency_ms": latency_ms(latencies),
        },
        "pipeline": {
            "scenarios": [d.name for d in dirs],
            "frames": gated.frames,
            "gated_share": round(gated.gated / gated.frames, 3) if gated.frames else None,
            "seconds_gated": round(gated.seconds, 2),
            "seconds_every_frame": round(every.seconds, 2),
            # The gate as the gated replays ran it, and whether the settings file turns it on.
            "motion": with_gate(settings, True).motion.model_dump(exclude={"enabled"}),
            "motion_enabled_in_settings": settings.motion.enabled,
        },
        "events": {"gated": gated.families, "every_frame": every.families},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _bar(desc: str, total: int, progress: bool, unit: str = "frame") -> tqdm:
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not progress, leave=False)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="detector latency, pipeline frames/s gated and not, the Ultralytics baseline, event recall; JSON"
    )
    p.add_argument(
        "--config",
        default="configs/default.yaml",
        help="settings YAML: the model, rules and gate to time (default configs/default.yaml)",
    )
    p.add_argument(
        "--scenarios",
        default="data/bench/scenarios",
        help="folder of `feixian synth` scenario folders (default data/bench/scenarios, written by `make bench`)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=300,
        help="most frames a scenario the detector and baseline are timed on (default 300: a minute at 5 fps)",
    )
    p.add_argument(
        "--points",
        type=int,
        default=BUREAU_POINTS,
        help=f"points replayed at once, at {REALTIME_FPS:g} fps each, for points held and peak memory "
        f"(default {BUREAU_POINTS}: the bureau's)",
    )
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.frames < 1 or args.points < 1:
        print("feixian bench: --frames and --points must be at least 1", file=sys.stderr)
        return 2
    try:
        result = bench(args.config, args.scenarios, args.frames, args.points, progress=not args.quiet)
    except (EvalError, ConfigError) as e:
        print(f"feixian bench: {e}", file=sys.stderr)
        return 2
    write_json(result, args.out)
    return 0
