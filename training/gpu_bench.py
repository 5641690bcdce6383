"""`feixian bench-gpu`: frames a second of the settings' detector on ONNX Runtime's CUDA provider at batch 1, 8 and 32,
as JSON (`make bench-gpu`; issue 26).

Frames are decoded beforehand (the highway video beside the repo, or `--video`), so only `OnnxDetector.detect_batch`
is timed: letterbox, one network call for the whole batch, NMS per frame. Each batch size gets one untimed call
first (CUDA picks its kernels for each new input shape). Where this onnxruntime has no CUDAExecutionProvider, or
the provider does not start (no GPU), the command says why on stderr, writes {"skipped": reason, "providers": [...]}
and exits 0, so `make bench-gpu` passes on a machine without a GPU. `--device cpu` times the same batches on the
CPU, the figure a GPU's is compared against.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from feixian.config import ConfigError, load_config
from pipeline.detector import DetectorError, DeviceUnavailable, OnnxDetector
from training.bench import machine_facts
from training.evaluate import write_json

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "highway_cctv_320x240.avi"
DEFAULT_BATCHES = (1, 8, 32)


class GpuBenchError(ValueError):
    """A bad argument or input: no frames to time, or a batch list that is not positive integers."""


def read_frames(video: Path, limit: int) -> list[np.ndarray]:
    """Up to `limit` BGR frames from the start of `video`."""
    capture = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    try:
        while len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    if not frames:
        raise GpuBenchError(f"{video}: no frame could be decoded")
    return frames


def parse_batches(text: str) -> list[int]:
    """'1,8,32' -> [1, 8, 32]."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise GpuBenchError(f"--batches: expected comma-separated integers, got {text!r}") from e
    if not batches or min(batches) < 1:
        raise GpuBenchError(f"--batches: expected integers of at least 1, got {text!r}")
    return batches


def time_batches(detector: OnnxDetector, frames: list[np.ndarray], batch: int) -> dict:
    """Frames a second of `detect_batch` over `frames` in full batches of `batch` (the frames taken again from the
    start where fewer than one batch are left), after one untimed call."""
    calls = max(1, len(frames) // batch)
    batches = [[frames[(k * batch + i) % len(frames)] for i in range(batch)] for k in range(calls)]
    detector.detect_batch(batches[0])
    start = time.perf_counter()
    for chunk in batches:
        detector.detect_batch(chunk)
    seconds = time.perf_counter() - start
    return {
        "frames_per_s": round(calls * batch / seconds, 2),
        "ms_per_batch": round(1000 * seconds / calls, 3),
        "calls": calls,
        "frames": calls * batch,
    }


def gpu_name() -> str | None:
    """The first GPU's name from nvidia-smi, where there is one: the figures mean little without it."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        run = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = run.stdout.strip().splitlines()
    return lines[0].strip() if run.returncode == 0 and lines else None


def gpu_bench(config: str | Path, video: Path | None, frames: int, batches: list[int], device: str = "cuda") -> dict:
    """The JSON of the module docstring, timing the settings' model and thresholds on `device` over frames of `video`
    (None: the highway video beside the repo); raises `DeviceUnavailable` where the device cannot run the model,
    before any frame is looked for."""
    machine = machine_facts()
    cfg = load_config(config)
    m = cfg.settings.model
    detector = OnnxDetector(cfg.model_path, m.conf_threshold, m.iou_threshold, m.class_map, m.threads, device=device)
    video = video or DEFAULT_VIDEO
    if not video.is_file():
        raise GpuBenchError(f"video not found: {video} (give one with --video)")
    sample = read_frames(video, frames)
    timings = {str(b): time_batches(detector, sample, b) for b in batches}
    h, w = sample[0].shape[:2]
    return {
        "device": device,
        # Read after the timings: a provider that failed mid-run and fell back to the CPU shows here.
        "providers": detector.providers,
        "gpu": gpu_name() if device == "cuda" else None,
        "onnxruntime": ort.__version__,
        "model": str(cfg.model_path),
        "model_sha256": detector.sha256,
        "video": str(video),
        "frame": [h, w],
        "input": list(detector.input_shape_for(h, w)),
        "threads": m.threads,
        "batches": timings,
        "machine": machine,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench-gpu",
        help="detector frames/s at batch 1, 8, 32 on ONNX Runtime's CUDA provider (skips without one); JSON",
    )
    p.add_argument(
        "--config",
        default="configs/default.yaml",
        help="settings YAML: the model and thresholds to time (default configs/default.yaml)",
    )
    p.add_argument("--out", default=None, help="write the JSON here (also printed)")
    p.add_argument(
        "--frames", type=int, default=256, help="frames decoded from the start of the video and timed (default 256)"
    )
    p.add_argument(
        "--batches",
        default=",".join(map(str, DEFAULT_BATCHES)),
        help="batch sizes to time, comma-separated (default 1,8,32)",
    )
    p.add_argument(
        "--video", default=None, help=f"video to decode the frames from (default {DEFAULT_VIDEO}, where present)"
    )
    p.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cuda (default): ONNX Runtime's CUDAExecutionProvider; cpu: the same batches on the CPU provider",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        batches = parse_batches(args.batches)
        if args.frames < 1:
            raise GpuBenchError("--frames must be at least 1")
        video = Path(args.video) if args.video else None
        result = gpu_bench(args.config, video, args.frames, batches, args.device)
    except DeviceUnavailable as e:
        # No GPU here is no failure of the code: say why and leave a record of it for `make bench-gpu`.
        print(f"feixian bench-gpu: skipped: {e}", file=sys.stderr)
        write_json({"skipped": str(e), "providers": ort.get_available_providers()}, args.out)
        return 0
    except (GpuBenchError, DetectorError, ConfigError) as e:
        print(f"feixian bench-gpu: {e}", file=sys.stderr)
        return 2
    write_json(result, args.out)
    return 0
