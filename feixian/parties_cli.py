"""`feixian parties import|list` and `feixian cases party`: the parties of cases as commands (merchants bound to
zones, vehicles by plate), and the `party_record` `feixian cases list --json` adds to each case (`with_parties`).

    feixian parties import --csv merchants.csv --kind merchant
    feixian cases party 12 --user li --party 3     # pick; without --party, confirm the party found automatically
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cases.models import Case, Party
from cases.parties import PartyError, PartyService, party_json
from cases.party_history import risk_grade
from cases.party_import import ROWS, PartyImportError, import_parties, read_rows
from cases.service import CaseNotFoundError

REFUSED = 2


def _parties(rt) -> PartyService:
    return PartyService(rt.sessions, rt.config.settings.parties)


def with_parties(rt, cases: Sequence[Case], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` (the JSON of `cases`, in order) each with `party_record`: the party on record with who confirmed it,
    whether the case is its first minor violation, and its risk grade; None when the case has no party yet."""
    records = _parties(rt).describe(cases, rt.cases.clock())
    return [row | {"party_record": records[case.id]} for case, row in zip(cases, rows, strict=True)]


def cmd_parties_import(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    try:
        text = Path(args.csv).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"feixian parties import: {args.csv}: 读不了 / cannot read: {e}", file=sys.stderr)
        return REFUSED
    zones = {p.id: {z.id for z in p.zones} for p in rt.config.points}
    try:
        rows = read_rows(args.kind, text, zones)
    except PartyImportError as e:
        print(f"feixian parties import: {args.csv}: 未导入任何行 / nothing imported:\n{e}", file=sys.stderr)
        return REFUSED
    with rt.sessions() as s:
        # The account that ran the command: an import has no signed-in user, and the record must name someone.
        result = import_parties(s, _parties(rt), rows, f"import:{getpass.getuser()}", rt.cases.clock())
        s.commit()
    print(json.dumps({"created": result.created, "updated": result.updated, "cases_bound": result.cases_bound}))
    return 0


def cmd_parties_list(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    parties, now = _parties(rt), rt.cases.clock()
    out = []
    with rt.sessions() as s:
        for party in s.scalars(select(Party).where(Party.kind == args.kind) if args.kind else select(Party)):
            history = parties.history(s, party.id)
            risk = risk_grade(history, now, parties.settings).to_json()
            out.append(party_json(party) | {"cases": [c.case_id for c in history], "risk": risk})
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        for p in out:
            print(f"{p['id']:>6}  {p['kind']:<8} {p['name']:<20} {p['plate'] or p['shop']:<16} {p['risk']['label']}")
    return 0


def cmd_cases_party(args: argparse.Namespace) -> int:
    from feixian.cli import _runtime

    rt = _runtime(args)
    parties = _parties(rt)
    try:
        party_id = args.party or rt.cases.get(args.case).party_id
    except CaseNotFoundError:
        print(f"feixian cases party: 没有案件 {args.case} / no case {args.case}", file=sys.stderr)
        return REFUSED
    if party_id is None:
        found = [party_json(p) for p in parties.candidates(args.case)]
        print(
            f"feixian cases party: 案件 {args.case} 尚无当事人，请用 --party 指定 / case {args.case} has no party "
            f"yet: pick one with --party; candidates: {json.dumps(found, ensure_ascii=False)}",
            file=sys.stderr,
        )
        return REFUSED
    try:
        case = parties.assign(args.case, party_id, args.user)
    except PartyError as e:
        print(f"feixian cases party: {e}", file=sys.stderr)
        return REFUSED
    print(json.dumps(with_parties(rt, [case], [{"id": case.id}])[0], ensure_ascii=False))
    return 0


def register(cases: argparse._SubParsersAction, sub: argparse._SubParsersAction, common) -> None:
    """`cases party` under the `cases` command group, and the `parties` command."""
    p = cases.add_parser("party", parents=[common], help="pick or confirm the party of a case")
    p.add_argument("case", type=int, help="case id")
    p.add_argument("--user", required=True, help="the active reviewer, legal reviewer or supervisor binding it")
    p.add_argument("--party", type=int, default=None, help="party id (default: confirm the one found automatically)")
    p.set_defaults(func=cmd_cases_party)

    parties = sub.add_parser("parties", help="merchants and vehicles").add_subparsers(dest="parties_cmd", required=True)
    p = parties.add_parser("import", parents=[common], help="import parties from CSV: all rows or none")
    p.add_argument("--csv", required=True, help="UTF-8 CSV with a header row (columns: see cases.party_import)")
    p.add_argument("--kind", required=True, choices=sorted(ROWS), help="what the rows are")
    p.set_defaults(func=cmd_parties_import)
    p = parties.add_parser("list", parents=[common], help="parties with their cases and risk grade")
    p.add_argument("--kind", choices=sorted(ROWS), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_parties_list)
