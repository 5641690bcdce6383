"""`feixian bench`: how fast the deployed pipeline runs on this machine, as JSON (`make bench`).

Two figures, both with the model, thresholds and plate reader of a settings file:
- detector: milliseconds per frame of `OnnxDetector.detect` alone (letterbox, inference, decoding,
  NMS) on a scenario video's frames, decoded beforehand so that decoding is not counted;
- pipeline: frames per second of a whole replay (decode, detect, track, rules, evidence, cases in a
  throw-away SQLite database), and how many cameras at their detect rate that throughput would carry.

Speed only: `feixian eval` says whether the answers are right. The figures depend on the machine and on
what else it is doing, so the JSON records the CPU count and the library versions beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import cv2
import numpy as np

from feixian.config import ConfigError
from training.evaluate import (
    EvalError,
    deployment_settings,
    latency_ms,
    model_facts,
    scenario_dirs,
    scenario_runtime,
    settings_for,
    write_json,
)


def _frames(video: Path, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < limit:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise EvalError(f"{video}: no frames could be decoded")
    return frames


def bench(config: str | Path, scenarios_dir: str | Path, frames: int = 200) -> dict:
    """Time the detector on up to `frames` frames of the first scenario, then replay every scenario."""
    from feixian.config import load_config
    from feixian.runtime import replay

    deployed = deployment_settings(str(config))
    model = load_config(config).model_path
    settings = settings_for(model, deployed)
    dirs = scenario_dirs(scenarios_dir)
    with tempfile.TemporaryDirectory(prefix="feixian-bench-") as tmp:
        runtimes = [scenario_runtime(d, settings, Path(tmp) / d.name) for d in dirs]
        detector = runtimes[0].detector
        sample = _frames(dirs[0] / "video.mp4", frames)
        detector.detect(sample[0])  # the first run allocates ONNX Runtime's buffers
        latencies = []
        for frame in sample:
            t0 = time.perf_counter()
            detector.detect(frame)
            latencies.append(time.perf_counter() - t0)
        h, w = sample[0].shape[:2]
        replays = []
        for d, rt in zip(dirs, runtimes, strict=True):
            _ = rt.detector, rt.plate_reader, rt.cases  # loading models and migrating the database is not throughput
            t0 = time.perf_counter()
            result = replay(rt)
            seconds = time.perf_counter() - t0
            if result.errors:
                raise EvalError(f"{d.name}: replay failed: {result.errors}")
            n = sum(s.frames for s in result.stats.values())
            replays.append((d.name, n, seconds))
        detect_fps = sorted({p.detect_fps for rt in runtimes for p in rt.config.points})
    total_frames = sum(n for _, n, _ in replays)
    total_s = sum(s for _, _, s in replays)
    fps = total_frames / total_s
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": version("onnxruntime"),
            "opencv": cv2.__version__,
        },
        "model": model_facts(detector, model),
        "detector": {
            "frames": len(latencies),
            "frame": [h, w],
            "input": list(detector.input_shape_for(h, w)),
            "latency_ms": latency_ms(latencies),
        },
        "pipeline": {
            "scenarios": {name: {"frames": n, "seconds": round(s, 2)} for name, n, s in replays},
            "frames": total_frames,
            "seconds": round(total_s, 2),
            "frames_per_s": round(fps, 1),
            "detect_fps": detect_fps,
            # Cameras sampled at the slowest detect_fps of the scenarios that this throughput keeps up with.
            "cameras_at_detect_fps": round(fps / detect_fps[0], 1),
        },
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="detector latency and pipeline throughput on scenario videos, JSON")
    p.add_argument("--config", required=True, help="settings YAML: the model, thresholds and plate reader to time")
    p.add_argument("--scenarios", required=True, help="folder of `feixian synth` scenario folders")
    p.add_argument("--frames", type=int, default=200, help="frames the detector alone is timed on (default 200)")
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.frames < 1:
        print("feixian bench: --frames must be at least 1", file=sys.stderr)
        return 2
    try:
        result = bench(args.config, args.scenarios, args.frames)
    except (EvalError, ConfigError) as e:
        print(f"feixian bench: {e}", file=sys.stderr)
        return 2
    write_json(result, args.out)
    return 0
