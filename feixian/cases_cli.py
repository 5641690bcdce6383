"""`feixian cases move` and `feixian sla report`: the lifecycle and its clock as commands, for scripts and the
bureau's other systems (payment, publicity), with the checks the review UI applies (`CaseService.transition`);
and the clock's fields `feixian cases list --json` adds to each case (`with_clock`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from cases.lifecycle import State, TransitionError
from cases.models import Case
from cases.procedure import Move, PartyKind
from cases.schema import case_to_json
from cases.service import CaseNotFoundError
from cases.sla import SlaClock, load_timelines, sla_report

REFUSED = 2


def _clock(rt) -> SlaClock:
    return rt.config.settings.sla.clock()


def with_clock(rt, cases: Sequence[Case]) -> list[dict[str, Any]]:
    """`cases` as `feixian cases list --json` shows them: each with `due_at` (the target from discovery) and
    `overdue` (done after it, or still open past it)."""
    clock, timelines, now = _clock(rt), load_timelines(rt.sessions), rt.cases.clock()
    out = []
    for case in rt.cases.as_corrected(cases):
        case_clock = clock.of(case.triggered_at, timelines.get(case.id, []), now)
        out.append(case_to_json(case) | {"due_at": case_clock.due_at.isoformat(), "overdue": case_clock.overdue})
    return out


def cmd_cases_move(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    move = Move(args.fine, PartyKind(args.party_kind) if args.party_kind else None, args.waived)
    try:
        rt.cases.transition(args.case, args.to, args.user, args.reason, move)
    except (TransitionError, CaseNotFoundError) as e:
        print(f"feixian cases move: {e}", file=sys.stderr)
        return REFUSED
    last = rt.cases.history(args.case)[-1]
    out = {
        "id": args.case,
        "seq": last.seq,
        "from": last.from_state,
        "to": last.to_state,
        "actor": last.actor,
        "at": last.at.isoformat(),
        "reason": last.reason,
        "details": last.details,
        "hash": last.hash,
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_sla_report(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    report = sla_report(rt.sessions, _clock(rt), rt.cases.clock())
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return 0
    for state, durations in report.stages.items():
        d = durations.to_json()
        if d["count"]:
            print(f"{state.value:<13} {d['count']:>6} stays  mean {d['mean_hours']:>8} h  p90 {d['p90_hours']:>8} h")
    d = report.discovery_to_execution.to_json()
    print(f"discovery -> execution: {d['count']} cases, mean {d['mean_hours']} h, p90 {d['p90_hours']} h")
    print(f"at risk (due within {report.at_risk_hours} h or overdue): {len(report.at_risk)}")
    for r in report.at_risk:
        print(f"  case {r.case_id:>6} {r.state:<13} due {r.clock.due_at:%Y-%m-%d %H:%M} UTC")
    return 0


def _fine(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"罚款须为元的非负整数 / a fine is a whole number of yuan, not {text!r}")
    return int(text)


def register(cases: argparse._SubParsersAction, sub: argparse._SubParsersAction, common) -> None:
    """`cases move` under the `cases` command group, and the `sla` command."""
    p = cases.add_parser("move", parents=[common], help="move a case to another lifecycle state")
    p.add_argument("case", type=int, help="case id")
    p.add_argument("--to", required=True, choices=[s.value for s in State], help="the target state")
    p.add_argument("--user", required=True, help="the active user making the move (their role is checked)")
    p.add_argument("--reason", default=None, help="why (voiding, a warned case filed or closed, withdrawals...)")
    p.add_argument("--waived", action="store_true", help="the party waived the rest of the statement window")
    p.add_argument("--fine", type=_fine, default=None, metavar="YUAN", help="proposed (or, deciding, final) fine")
    p.add_argument("--party-kind", choices=[k.value for k in PartyKind], default=None, help="judges a major fine")
    p.set_defaults(func=cmd_cases_move)

    sla = sub.add_parser("sla", help="the clock: target, stage durations").add_subparsers(dest="sla_cmd", required=True)
    p = sla.add_parser("report", parents=[common], help="stage durations, discovery to execution, cases at risk")
    p.add_argument("--json", action="store_true", help="the report as JSON")
    p.set_defaults(func=cmd_sla_report)
