"""The 双公示 export on SQLite and PostgreSQL: decided penalty cases only (never a warned one, never a withdrawn
one, which is listed for take-down instead), no forbidden field or value, and every face and plate of the
published key frames blurred."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace

import cv2
import numpy as np
from conftest import COCO_IMAGES, need
from sqlalchemy import func, select
from test_case_procedure import FINISH, Clock, walk
from test_case_procedure import clock as clock  # noqa: F401  (the fixtures, shared)
from test_case_procedure import service as service  # noqa: F401
from test_case_procedure import sessions as sessions  # noqa: F401
from test_case_procedure import store as store  # noqa: F401
from test_cases_service import record
from test_parties import VEHICLES, load
from test_parties_cli import cli, write_config

from cases.db import make_engine, session_factory
from cases.lifecycle import State
from cases.models import AccessLog
from cases.parties import PartyService
from cases.party_settings import PartySettings
from cases.procedure import Move
from cases.publicity import FIELDS, PublicitySettings, write
from cases.publicity_export import EXPORT_ACTOR, PublicityExporter
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from cases.workdays import WorkCalendar
from feixian.config import load_config

S = State
PERSON = [40, 30, 100, 200]  # x1 y1 x2 y2
TRUCK = [150, 60, 310, 220]
FACE = (55, 35, 85, 70)  # inside the person's box, where a face would be
PLATE = (200, 190, 260, 212)  # on the truck's bumper
FORBIDDEN_KEYS = {"contact", "phone", "address", "id_number", "plate", "name"}


def noise_jpeg() -> bytes:
    """A 320x240 frame of coarse noise: any blur shows as a fall in local contrast."""
    rng = np.random.default_rng(6)
    image = cv2.resize(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), (320, 240), interpolation=cv2.INTER_NEAREST)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


RECORDED = [{"class": "person", "box": PERSON}, {"class": "truck_dirty", "box": TRUCK}]


def open_case(
    service, store, event_id: str, category: str, plate: str | None, minutes: int, jpeg=None, objects=None, fix=None
):
    """A confirmed case whose key frame `best` is `jpeg` (default: noise) with `objects` recorded in it, its subtype
    corrected to `fix` in the review when given."""
    prefix = f"evidence/JDZ-001/{event_id}"
    store.put(f"{prefix}/original/best.jpg", jpeg or noise_jpeg(), "image/jpeg")
    objects = RECORDED if objects is None else objects
    manifest = {
        "point": {"id": "JDZ-001", "name": "城中路 商铺门前", "town": "嘉定镇"},
        "subtype_label": {"zh-CN": "车容不洁" if category == "vehicle" else "出店经营"},
        "party": {"plate": plate},
        "keyframes": [{"label": "best", "objects": objects}],
    }
    store.put(f"{prefix}/manifest.json", json.dumps(manifest, ensure_ascii=False).encode(), "application/json")
    subtype, zone = ("dirty", "road") if category == "vehicle" else ("shopfront", "front")
    rec = replace(record(event_id, minutes), category=category, subtype=subtype, zone_id=zone, party=plate)
    rec = replace(
        rec, evidence={"original/best": f"{prefix}/original/best.jpg"}, manifest_key=f"{prefix}/manifest.json"
    )
    case_id = service.open_case(rec)[0].id
    if fix:
        service.correct(case_id, "subtype", fix, "li")
    walk(service, case_id, [(S.CONFIRMED, "li", None, None)])
    return case_id


def decide(service, clock, case_id: int, fine: int) -> None:
    """File (unless filed), notify and decide once the statement window closed."""
    if service.get(case_id).state != S.FILED:
        walk(service, case_id, [(S.FILED, "wang", None, None)])
    walk(service, case_id, [(S.NOTIFIED, "wang", None, Move(fine_yuan=fine))])
    clock.now = max(clock.now, service.get(case_id).statement_due_at)
    walk(service, case_id, [(S.DECIDED, "wang", "window closed", None)])


def test_export_publishes_decisions_only_blurred_and_without_personal_data(service, sessions, store, clock, tmp_path):
    load(sessions, PartyService(sessions, PartySettings()), "vehicle", VEHICLES)  # its contact: an address
    fined = open_case(service, store, "ev-fined", "vehicle", "沪D·62819", 0, fix="uncovered")
    decide(service, clock, fined, 200)
    walk(service, fined, FINISH)
    no_party = open_case(service, store, "ev-no-party", "occupation", None, 1)
    decide(service, clock, no_party, 100)
    warned = open_case(service, store, "ev-warned", "vehicle", "沪E12345", 2)
    walk(service, warned, [(S.WARNED, "wang", None, None)])
    clock.now = service.get(warned).recheck_due_at
    walk(service, warned, [(S.FILED, "wang", "not corrected", None)])
    decide(service, clock, warned, 300)  # warned first: a first minor violation is never published
    pulled = open_case(service, store, "ev-withdrawn", "occupation", None, 3)
    decide(service, clock, pulled, 500)
    walk(service, pulled, FINISH[:2])
    open_case(service, store, "ev-open", "occupation", None, 4)  # confirmed, not decided

    out = tmp_path / "out"
    settings = PublicitySettings()
    exporter = PublicityExporter(sessions, store, settings, WorkCalendar().tz, service.log_access)
    write(out, exporter.export(out))
    first = json.loads((out / "publicity.json").read_text(encoding="utf-8"))
    assert len(first["published"]) == 3 and (out / "images" / f"case-{pulled:06d}-best.jpg").exists()

    clock.advance(days=1)
    walk(service, pulled, [(S.WITHDRAWN, "wang", "decision revoked on review", None)])
    result = exporter.export(out)
    write(out, result)
    doc = json.loads((out / "publicity.json").read_text(encoding="utf-8"))
    year = clock.now.year
    assert [r["decision_no"] for r in doc["published"]] == [settings.decision_no(i, year) for i in (fined, no_party)]
    assert doc["withdrawn"] == [
        {"decision_no": settings.decision_no(pulled, year), "withdrawn_on": doc["withdrawn"][0]["withdrawn_on"]}
    ]
    assert not list((out / "images").glob(f"case-{pulled:06d}-*"))  # taken down with the decision
    assert not list((out / "images").glob(f"case-{warned:06d}-*"))

    truck = doc["published"][0]
    assert (truck["party_name"], truck["party_code"], truck["fine_yuan"]) == (
        "浦东渣土运输有限公司",
        "91310115MA1K4AB32R",
        200,
    )
    assert truck["penalty_type"] == "罚款" and truck["agency"] == settings.agency
    # The subtype as the review corrected it, not the manifest's label of the machine's reading.
    assert truck["violation"] == "渣土车未密闭" and "渣土车未密闭" in truck["facts"]
    with (out / "publicity.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(FIELDS.values()) and len(rows) == 3
    assert_no_personal_data(doc, (out / "publicity.csv").read_text(encoding="utf-8-sig"))
    assert_blurred(out, result.blurred)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AccessLog).where(AccessLog.username == EXPORT_ACTOR)) >= 4


def test_the_command_writes_the_files(tmp_path, capsys):
    settings = write_config(tmp_path)
    assert cli(settings, capsys, "db", "upgrade")[0] == 0
    code, out, err = cli(settings, capsys, "publicity", "export", "--out", str(tmp_path / "pub"))
    assert code == 0 and json.loads(out)["published"] == 0 and "no detector" in err
    assert {p.name for p in (tmp_path / "pub").iterdir()} == {
        "images",
        "publicity.csv",
        "publicity.json",
        "withdrawn.csv",
    }


def assert_no_personal_data(doc: dict, csv_text: str) -> None:
    for rec in doc["published"]:
        assert set(rec) == set(FIELDS) and not set(rec) & FORBIDDEN_KEYS
    text = json.dumps(doc, ensure_ascii=False) + csv_text
    for value in ("上海市浦东新区某路1号", "沪D62819", "沪D·62819", "沪E12345"):  # the contact, the plates
        assert value not in text
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text), "a mobile number"
    assert not re.search(r"(?<![0-9A-Z])\d{17}[\dXx](?![0-9A-Z])", text), "an ID card number"


def covers(region, box) -> bool:
    return region[0] <= box[0] and region[1] <= box[1] and region[2] >= box[2] and region[3] >= box[3]


def contrast(image: np.ndarray, box) -> float:
    x1, y1, x2, y2 = box
    return float(np.abs(np.diff(image[y1:y2, x1:x2].astype(float), axis=1)).mean())


def assert_blurred(out, blurred: dict) -> None:
    assert len(blurred) == 2
    original = cv2.imdecode(np.frombuffer(noise_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    for name, regions in blurred.items():
        for box in (FACE, PLATE, tuple(PERSON)):
            assert any(covers(r, box) for r in regions), (name, box, regions)
        image = cv2.imread(str(out / name))
        for box in (FACE, PLATE):
            assert contrast(image, box) < contrast(original, box) / 4, (name, box)
        untouched = (0, 0, 30, 240)  # left of the person: nothing to hide there
        assert contrast(image, untouched) > contrast(original, untouched) * 0.8


def test_the_command_also_blurs_people_the_evidence_did_not_record(tmp_path, capsys, coco_model):
    """A COCO photo with a crowd, recorded with no objects at all: the deployed detector (here the COCO model) finds
    the people at export, and every person of the photo's own labels at least 40x66 px ends up blurred."""
    photo = need(COCO_IMAGES / "000000000257.jpg")
    settings = write_config(tmp_path)
    model = {"path": str(coco_model), "class_map": {"person": "person", "car": "car", "truck": "truck"}}
    settings.write_text(f"points_file: points.yaml\nmodel: {json.dumps(model)}\n", encoding="utf-8")
    assert cli(settings, capsys, "db", "upgrade")[0] == 0
    sessions = session_factory(make_engine(load_config(settings, tmp_path / "data").database_url))
    for name, role in (("li", "reviewer"), ("wang", "legal")):
        UserService(sessions).add_user(name, "a-long-pass", role)
    clock = Clock()
    service = CaseService(sessions, clock=clock)
    case_id = open_case(
        service,
        LocalObjectStore(tmp_path / "data" / "evidence"),
        "ev-crowd",
        "occupation",
        None,
        0,
        jpeg=photo.read_bytes(),
        objects=[],
    )
    decide(service, clock, case_id, 100)

    code, out, _ = cli(settings, capsys, "publicity", "export", "--out", str(tmp_path / "pub"))
    assert code == 0 and json.loads(out)["images"] == 1
    original = cv2.imread(str(photo))
    exported = cv2.imread(str(tmp_path / "pub" / "images" / f"case-{case_id:06d}-best.jpg"))
    height, width = original.shape[:2]
    people = []
    for line in photo.with_suffix(".txt").read_text().splitlines():
        cls, cx, cy, w, h = (float(v) for v in line.split())
        x1, y1, x2, y2 = (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height
        if cls == 0 and x2 - x1 >= 40 and y2 - y1 >= 66:
            people.append((int(x1 + 0.25 * (x2 - x1)), int(y1), int(x2 - 0.25 * (x2 - x1)), int(y1 + 0.3 * (y2 - y1))))
    assert people, "the photo should hold people big enough to judge"
    for face in people:  # the upper middle of each person's box: where the head is
        assert contrast(exported, face) < contrast(original, face) * 0.6, face
