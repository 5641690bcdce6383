"""`feixian publicity export --out DIR`: the 双公示 export for the bureau's publicity platform: `publicity.csv`,
`publicity.json`, `withdrawn.csv` and the blurred key frames under `images/` (`cases.publicity`,
`cases.publicity_export`). By default the deployed detector also looks for people and vehicles in each image,
at its tracking threshold (the lowest it keeps), so the blur covers those the evidence did not record;
`--no-detect` blurs only the recorded boxes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from cases.publicity import write
from cases.publicity_export import FindObjects, PublicityExporter


def _detector_objects(rt) -> FindObjects | None:
    if not rt.config.model_path.is_file():
        print(
            f"feixian publicity export: no detector at {rt.config.model_path}: blurring recorded boxes only",
            file=sys.stderr,
        )
        return None
    detector = rt.detector

    def find(image: np.ndarray) -> list[dict[str, Any]]:
        found = detector.detect(image)
        return [
            {"class": str(c), "box": box.tolist()} for box, c in zip(found.xyxy, found.data["class_name"], strict=True)
        ]

    return find


def cmd_publicity_export(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    settings = rt.config.settings
    exporter = PublicityExporter(
        rt.sessions,
        rt.store,
        settings.publicity,
        settings.sla.calendar().tz,
        rt.cases.log_access,
        None if args.no_detect else _detector_objects(rt),
    )
    out = Path(args.out)
    result = exporter.export(out)
    write(out, result)
    images = sum(len(r["images"]) for r in result.published)
    summary = {"published": len(result.published), "withdrawn": len(result.withdrawn), "images": images}
    print(json.dumps(summary | {"out": str(out)}, ensure_ascii=False))
    return 0


def register(sub: argparse._SubParsersAction, common) -> None:
    """The `publicity` command."""
    publicity = sub.add_parser("publicity", help="双公示 publicity").add_subparsers(dest="publicity_cmd", required=True)
    p = publicity.add_parser("export", parents=[common], help="decided penalty cases as CSV, JSON, blurred images")
    p.add_argument("--out", required=True, help="folder to write publicity.csv, publicity.json, withdrawn.csv, images/")
    p.add_argument("--no-detect", action="store_true", help="blur only the boxes the evidence recorded")
    p.set_defaults(func=cmd_publicity_export)
