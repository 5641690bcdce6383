"""`feixian synth`: the labelled image dataset and the ground-truth scenario videos.

feixian synth --seed 1 --out data/synth --images 5000 --scenarios 0
feixian synth --seed 10 --out data/synth --images 1000 --frames 3000 --scenarios 0
feixian synth --out data/demo --demo
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from training.synth.dataset import write_dataset
from training.synth.scenario import DEMO_SPECS, write_scenario
from training.synth.timeline import NoCameraError, ScenarioSpec


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (64 <= w <= 4096 and 64 <= h <= 4096) or w % 2 or h % 2:
        raise argparse.ArgumentTypeError(f"size must be even and between 64 and 4096 px, got {text}")
    return w, h


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("synth", help="generate labelled street scenes and ground-truth scenario videos")
    p.add_argument("--seed", type=int, default=0, help="run seed; distinct seeds give disjoint data")
    p.add_argument("--out", type=Path, required=True, help="output folder (dataset/ and scenarios/ inside)")
    p.add_argument(
        "--images",
        type=_non_negative,
        default=None,
        help="labelled images to write to OUT/dataset (default 1000; 0 with --demo)",
    )
    p.add_argument(
        "--frames",
        type=_non_negative,
        default=0,
        help="labelled frames sampled from training scenes (12 a scene) to add to OUT/dataset (default 0)",
    )
    p.add_argument(
        "--hidden-piles",
        type=_non_negative,
        default=0,
        help="labelled images with 1-3 more piles of goods, each partly hidden behind a chair, stool or table, "
        "to add to OUT/dataset (default 0)",
    )
    p.add_argument(
        "--scenarios",
        type=_non_negative,
        default=None,
        help="ground-truth scenario videos to write to OUT/scenarios (default 2; 0 with --demo)",
    )
    p.add_argument("--duration", type=float, default=150.0, help="scenario length in seconds (default 150)")
    p.add_argument("--dwell", type=float, default=30.0, help="occupation dwell time of scenario points, s (default 30)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="write the fixed demo scenarios street and road (OUT/scenarios/{street,road})",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes rendering images in parallel (default 1); the images do not depend on it",
    )
    p.add_argument("--size", type=_size, default=(640, 360), help="frame size WxH (default 640x360)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    images = args.images if args.images is not None else (0 if args.demo else 1000)
    scenarios = args.scenarios if args.scenarios is not None else (0 if args.demo else 2)
    try:
        specs = [
            ScenarioSpec(
                name=f"syn-{args.seed}-{k:02d}",
                seed=args.seed * 1000 + k,
                duration_s=args.duration,
                dwell_s=args.dwell,
                size=args.size,
            )
            for k in range(scenarios)
        ]
    except ValueError as e:
        print(f"feixian synth: {e}", file=sys.stderr)
        return 2
    if args.demo:
        specs += list(DEMO_SPECS)
    if images or args.frames or args.hidden_piles:
        try:
            data_yaml = write_dataset(
                args.out / "dataset",
                args.seed,
                images,
                args.size,
                workers=args.workers,
                frames=args.frames,
                hidden_piles=args.hidden_piles,
            )
        except NoCameraError as e:
            print(f"feixian synth: {e}", file=sys.stderr)
            return 2
        print(f"dataset: {data_yaml}")
    for spec in specs:
        target = write_scenario(spec, args.out / "scenarios" / spec.name)
        print(f"scenario: {target}")
    return 0
