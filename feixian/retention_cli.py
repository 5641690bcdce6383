"""`feixian retention run [--dry-run] [--json]`: delete raw material no case holds, older than `retention.raw_days`
(what that material is: `cases.retention`). `feixian run` / `serve` also run it at start and every
`retention.interval_h`."""

from __future__ import annotations

import argparse
import json


def cmd_retention_run(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    report = rt.retention(dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(
            f"{report.objects_seen} evidence objects: {report.kept_for_cases} held by cases, {report.kept_recent} "
            f"stored after {report.cutoff:%Y-%m-%d %H:%M} UTC; {verb} {len(report.deleted)}"
        )
        for key in report.deleted:
            print(f"  {verb} {key}")
        for key, why in report.failed.items():
            print(f"  not deleted {key}: {why}")
    return 1 if report.failed else 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    retention = sub.add_parser("retention", help="raw-material retention").add_subparsers(
        dest="retention_cmd", required=True
    )
    p = retention.add_parser(
        "run", parents=[common], help="delete evidence objects no case holds, stored longer than retention.raw_days"
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_retention_run)
