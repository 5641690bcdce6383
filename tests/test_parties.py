"""Parties on SQLite and PostgreSQL: CSV import (all rows or none, every faulty line named), cases bound to their
party (a vehicle by plate, the one merchant of a zone, or the reviewer's pick), first minor violations and risk
grades from a party's history, and the warning check by the party on record."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from test_case_procedure import clock as clock  # noqa: F401  (the fixtures, shared)
from test_case_procedure import service as service  # noqa: F401
from test_case_procedure import sessions as sessions  # noqa: F401
from test_case_procedure import walk
from test_cases_service import record

from cases.lifecycle import State
from cases.models import Party, PartyZone
from cases.parties import PartyError, PartyService
from cases.party_import import PartyImportError, import_parties, read_rows
from cases.party_settings import PartySettings
from cases.procedure import Move, ProcedureError

S = State
ZONES = {"JDZ-001": {"front", "side", "road"}}
MERCHANTS = """name,shop,licence_no,contact,point_id,zones
张三,张记水果,91310115MA1K4AB30P,13800000001,JDZ-001,front
李四,李家小吃,91310115MA1K4AB31Q,13800000002,JDZ-001,side
王五,王氏杂货,310115000123456,13800000003,JDZ-001,side
"""
VEHICLES = """plate,company,licence_no,contact
沪D·62819,浦东渣土运输有限公司,91310115MA1K4AB32R,上海市浦东新区某路1号
沪E12345,嘉定运输公司,,
"""


@pytest.fixture
def parties(sessions) -> PartyService:
    return PartyService(sessions, PartySettings())


def load(sessions, parties, kind: str, text: str):
    with sessions() as s:
        result = import_parties(s, parties, read_rows(kind, text, ZONES), "importer", datetime.now(UTC))
        s.commit()
    return result


def vehicle_case(service, event_id: str, plate: str, minutes: int = 0, subtype: str = "dirty") -> int:
    rec = replace(record(event_id, minutes), category="vehicle", subtype=subtype, zone_id="road", party=plate)
    return service.open_case(rec)[0].id


def shop_case(service, event_id: str, zone: str, minutes: int = 0, subtype: str = "shopfront") -> int:
    return service.open_case(replace(record(event_id, minutes), subtype=subtype, zone_id=zone))[0].id


def count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_import_binds_cases_by_plate_and_by_the_zones_only_merchant(service, sessions, parties):
    before = vehicle_case(service, "ev-before", "沪D62819")  # opened before the vehicle was known
    assert service.get(before).party_id is None
    result = load(sessions, parties, "vehicle", VEHICLES)
    assert (result.created, result.updated, result.cases_bound) == (2, 0, 1)
    assert load(sessions, parties, "merchant", MERCHANTS).created == 3

    with sessions() as s:
        truck = s.scalar(select(Party).where(Party.plate == "沪D62819"))
        zhang = s.scalar(select(Party).where(Party.licence_no == "91310115MA1K4AB30P"))
    assert (truck.kind, truck.name, truck.company) == ("vehicle", "浦东渣土运输有限公司", "浦东渣土运输有限公司")
    assert service.get(before).party_id == truck.id
    assert service.get(vehicle_case(service, "ev-after", "沪D·62819", 5)).party_id == truck.id
    assert service.get(vehicle_case(service, "ev-unknown", "沪B99999", 6)).party_id is None
    assert service.get(shop_case(service, "ev-front", "front")).party_id == zhang.id
    shared = shop_case(service, "ev-side", "side")  # two merchants front this zone: the reviewer picks
    assert service.get(shared).party_id is None
    assert sorted(p.name for p in parties.candidates(shared)) == ["李四", "王五"]

    again = load(sessions, parties, "merchant", MERCHANTS.replace("JDZ-001,front", "JDZ-001,front;road"))
    assert (again.created, again.updated, count(sessions, Party)) == (0, 3, 5)
    assert count(sessions, PartyZone) == 4


def test_a_faulty_file_names_every_bad_line_and_imports_nothing(sessions, parties):
    bad = MERCHANTS + "赵六,,91310115MA1K4AB33T,,JDZ-001,front\n"  # no shop
    bad += "钱七,钱记,91310115MA1K4AB30P,,JDZ-001,front\n"  # repeats line 2's licence
    bad += "孙八,孙记,12345,,JDZ-001,front\n"  # not a licence number
    bad += "周九,周记,91310115MA1K4AB34U,,JDZ-001,back\n"  # no such zone
    bad += "吴十,吴记,91310115MA1K4AB35W,,XYZ-9,front\n"  # no such point
    with pytest.raises(PartyImportError) as e:
        read_rows("merchant", bad, ZONES)
    lines = str(e.value).splitlines()
    assert [line.split(" / ")[0] for line in lines] == [f"第 {n} 行" for n in (5, 6, 7, 8, 9)]
    assert "shop" in lines[0] and "repeats line 2" in lines[1] and "licence" in lines[2]
    assert "no zone ['back']" in lines[3] and "no point XYZ-9" in lines[4]
    with pytest.raises(PartyImportError, match="line 1: .*missing: \\['company'\\]"):
        read_rows("vehicle", "plate,licence_no,contact\n沪D62819,,\n", None)
    with pytest.raises(PartyImportError, match="line 4: plate"):
        read_rows("vehicle", VEHICLES + "ABC,某公司,,\n", None)
    assert count(sessions, Party) == 0


def test_reviewer_picks_the_party_until_the_notice(service, sessions, parties, clock):
    load(sessions, parties, "merchant", MERCHANTS)
    case_id = shop_case(service, "ev-side", "side")
    li_si = next(p for p in parties.candidates(case_id) if p.name == "李四")
    with pytest.raises(PartyError, match="may not bind"):
        parties.assign(case_id, li_si.id, "yun")  # ops
    with pytest.raises(PartyError, match="no party"):
        parties.assign(case_id, 9999, "li")
    case = parties.assign(case_id, li_si.id, "li")
    assert (case.party_id, case.party_confirmed_by) == (li_si.id, "li")
    walk(service, case_id, [(S.CONFIRMED, "li", None, None), (S.FILED, "wang", None, Move(fine_yuan=200))])
    walk(service, case_id, [(S.NOTIFIED, "wang", None, None)])
    with pytest.raises(PartyError, match="settled"):
        parties.assign(case_id, li_si.id, "zhou")


def test_first_minor_and_risk_grade_follow_the_partys_history(service, sessions, parties, clock):
    load(sessions, parties, "merchant", MERCHANTS)
    first = shop_case(service, "ev-1", "front")
    described = parties.describe([service.get(first)], clock.now)[first]
    assert described["first_minor"] is True and described["risk"]["grade"] == "low"
    walk(service, first, [(S.CONFIRMED, "li", None, None), (S.WARNED, "wang", None, None)])

    stall = shop_case(service, "ev-stall", "front", minutes=10, subtype="stall")  # not on the first-minor list
    assert parties.describe([service.get(stall)], clock.now)[stall]["first_minor"] is False
    second = shop_case(service, "ev-2", "front", minutes=20)
    described = parties.describe([service.get(second)], clock.now)[second]
    assert described["first_minor"] is False and str(first) in described["first_minor_reason"]
    walk(service, second, [(S.CONFIRMED, "li", None, None)])
    # No plate on a shop's case: the earlier warning is found through the party on record.
    with pytest.raises(ProcedureError, match="not a first violation"):
        service.transition(second, S.WARNED, "wang")
    walk(service, second, [(S.FILED, "wang", None, Move(fine_yuan=200)), (S.NOTIFIED, "wang", None, None)])
    clock.now = service.get(second).statement_due_at
    walk(service, second, [(S.DECIDED, "wang", "window closed", None)])

    # The grade holds until the next fortnightly review: the review day before the cases still shows low risk.
    same_fortnight = parties.describe([service.get(second)], clock.now)[second]["risk"]
    later = parties.describe([service.get(second)], clock.now + timedelta(days=15))[second]["risk"]
    assert same_fortnight["grade"] == "low"
    assert (later["grade"], later["score"]) == ("medium", 3)  # two violations, one penalised
    assert later["next_inspection_on"] > later["reviewed_on"]
