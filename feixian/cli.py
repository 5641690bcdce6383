"""The `feixian` command (DESIGN.md §2: the names, flags and JSON keys are a contract)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from feixian.cases_cli import with_clock
from feixian.config import ConfigError, load_config
from feixian.parties_cli import with_parties

DEFAULT_CONFIG = "configs/default.yaml"
DEFAULT_DATA_DIR = "data/run"


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"settings file (default {DEFAULT_CONFIG})")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help="SQLite database and evidence folder live here")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _runtime(args: argparse.Namespace):
    from feixian.runtime import Runtime

    return Runtime(load_config(args.config, args.data_dir))


def cmd_replay(args: argparse.Namespace) -> int:
    from feixian.runtime import replay

    rt = _runtime(args)
    result = replay(rt)
    summary = {
        "points": {
            pid: {"frames": s.frames, "events": s.events, "cases": s.cases, "advisory": s.advisory}
            for pid, s in result.stats.items()
        },
        "errors": result.errors,
        "cases_total": rt.cases.count_cases(),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 1 if result.errors else 0


def _serve(args: argparse.Namespace, with_sources: bool) -> int:
    from feixian.app import serve

    return serve(_runtime(args), with_sources=with_sources, host=args.host, port=args.port)


def cmd_run(args: argparse.Namespace) -> int:
    return _serve(args, with_sources=True)


def cmd_serve(args: argparse.Namespace) -> int:
    return _serve(args, with_sources=False)


def cmd_cases_list(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    cases = rt.cases.all_cases(state=args.state)
    if args.json:
        print(json.dumps(with_parties(rt, cases, with_clock(rt, cases)), ensure_ascii=False, indent=2))
    else:
        for c in cases:
            print(f"{c.id:>6}  {c.state:<10} {c.category:<10} {c.subtype:<10} {c.point_id:<10} {c.started_at}")
    return 0


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    from cases.verify import verify_all, verify_case

    rt = _runtime(args)
    if args.all:
        report = verify_all(rt.sessions, rt.store)
    else:
        report = verify_case(rt.sessions, rt.store, args.case)
    print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    for p in report.problems:  # the JSON is for tools; a person reads these
        print(f"feixian evidence verify: case {p.case_id}: {p.reason}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from cases.db import upgrade

    cfg = load_config(args.config, args.data_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(cfg.database_url)
    print("database at head")
    return 0


def cmd_plates_read(args: argparse.Namespace) -> int:
    """Read the plate in each image (whole image, or --box), print one JSON object per image."""
    import cv2

    from pipeline.plate_province import ProvinceCheck
    from pipeline.plates import PlateReader, PlateRecognizer

    cfg = load_config(args.config, args.data_dir)
    model = args.model or cfg.plate_model_path
    if model is None:
        print("feixian plates read: no plate reader (give --model or set plates.model in the config)", file=sys.stderr)
        return 2
    plates = cfg.settings.plates
    check = ProvinceCheck.load(
        plates.province_model_path(cfg.base_dir), plates.province_agreed_confidence, plates.province_model_confidence
    )
    reader = PlateReader(
        PlateRecognizer(model), plates.min_confidence, plates.province_confidence, province_check=check
    )
    failed = 0
    for path in args.images:
        image = cv2.imread(path) if Path(path).is_file() else None
        if image is None:
            print(f"feixian plates read: {path}: not a readable image", file=sys.stderr)
            failed += 1
            continue
        read = reader.read_image(image, args.box)
        out = {"image": path, "text": None}
        if read is not None:
            out |= {
                "text": read.text,
                "confidence": round(read.confidence, 3),
                "colour": read.colour,
                "quad": [[round(float(v), 1) for v in corner] for corner in read.quad],
            }
        print(json.dumps(out, ensure_ascii=False))
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from feixian.cases_cli import register as register_cases
    from feixian.detect import register as register_detect
    from feixian.parties_cli import register as register_parties
    from feixian.publicity_cli import register as register_publicity
    from feixian.retention_cli import register as register_retention
    from feixian.users_cli import register as register_users
    from feixian.worker_cli import register as register_worker
    from training.bench import register as register_bench
    from training.evaluate import register as register_eval
    from training.gpu_bench import register as register_gpu_bench
    from training.plates.evaluate import register as register_plates_eval
    from training.plates.province import register as register_plates_province
    from training.plates.train import register as register_plates_train
    from training.real_dataset import register as register_real_data
    from training.review_bench import register as register_review_bench
    from training.synth.cli import register as register_synth
    from training.train import register as register_train
    from training.tune_rules import register as register_tune_rules

    common = _common()
    parser = argparse.ArgumentParser(prog="feixian", description="non-site enforcement pipeline")
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, help_ in (
        ("run", cmd_run, "embedded all-in-one: sources, pipeline, review UI"),
        ("serve", cmd_serve, "web app and push API (with workers for push points)"),
    ):
        p = sub.add_parser(name, parents=[common], help=help_)
        p.add_argument("--host", default=None)
        p.add_argument("--port", type=int, default=None)
        p.set_defaults(func=func)

    p = sub.add_parser("replay", parents=[common], help="process every file source as fast as possible")
    p.set_defaults(func=cmd_replay)
    register_worker(sub, common)

    cases = sub.add_parser("cases", help="case queries").add_subparsers(dest="cases_cmd", required=True)
    p = cases.add_parser("list", parents=[common], help="list cases")
    p.add_argument("--json", action="store_true", help="JSON list of cases")
    p.add_argument("--state", default=None, help="only cases in this state")
    p.set_defaults(func=cmd_cases_list)
    register_cases(cases, sub, common)
    register_parties(cases, sub, common)

    ev = sub.add_parser("evidence", help="evidence checks").add_subparsers(dest="evidence_cmd", required=True)
    p = ev.add_parser("verify", parents=[common], help="re-hash stored evidence and the audit chain")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--all", action="store_true")
    g.add_argument("case", nargs="?", type=int, help="case id")
    p.set_defaults(func=cmd_evidence_verify)

    register_users(sub, common)
    register_retention(sub, common)
    register_publicity(sub, common)

    db = sub.add_parser("db", help="database").add_subparsers(dest="db_cmd", required=True)
    p = db.add_parser("upgrade", parents=[common], help="run migrations to head")
    p.set_defaults(func=cmd_db_upgrade)

    plates = sub.add_parser("plates", help="licence-plate reader").add_subparsers(dest="plates_cmd", required=True)
    p = plates.add_parser("read", parents=[common], help="read the licence plate in images, JSON lines out")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG)")
    p.add_argument("--model", default=None, help="plate reader ONNX (default: plates.model of the config)")
    p.add_argument(
        "--box", type=float, nargs=4, default=None, metavar=("X1", "Y1", "X2", "Y2"), help="search here only"
    )
    p.set_defaults(func=cmd_plates_read)
    register_plates_train(plates)
    register_plates_province(plates)
    register_plates_eval(plates)

    register_detect(sub, common)
    register_synth(sub)
    register_train(sub)
    register_real_data(sub)
    register_eval(sub)
    register_tune_rules(sub)
    register_bench(sub)
    register_gpu_bench(sub)
    register_review_bench(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"feixian: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
