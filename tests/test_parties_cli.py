"""`feixian parties import`, `feixian cases party` and the `party_record` of `feixian cases list --json`: a refused
file names its lines and leaves nothing behind (exit 2); a vehicle's case is bound by plate on its own."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from test_cases_service import record
from test_parties import MERCHANTS, VEHICLES

from cases.db import make_engine, session_factory
from cases.service import CaseService
from cases.users import UserService
from feixian.cli import main
from feixian.config import load_config

POINTS = """points:
- id: JDZ-001
  name: 城中路 商铺门前
  town: 嘉定镇
  device_id: CAM-JDZ-001
  gps: [31.36, 121.27]
  source: {kind: file, uri: none.mp4}
  announced_on: '2024-01-01'
  legal_review: true
  technical_review: true
  in_service: true
  calibration_valid_until: '2030-01-01'
  zones:
  - {id: front, kind: no_occupation, polygon: [[0, 0], [10, 0], [10, 10]]}
  - {id: side, kind: no_occupation, polygon: [[20, 0], [30, 0], [30, 10]]}
  - {id: road, kind: roadway, polygon: [[0, 20], [30, 20], [30, 30]]}
  categories: [occupation, vehicle]
"""


def write_config(folder: Path) -> Path:
    """A settings file with one point (zones front, side, road) and no detector model."""
    (folder / "points.yaml").write_text(POINTS, encoding="utf-8")
    path = folder / "settings.yaml"
    path.write_text("points_file: points.yaml\nmodel: {path: none.onnx}\n", encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path)


def cli(config: Path, capsys, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--config", str(config), "--data-dir", str(config.parent / "data")])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_import_bind_and_list(config, tmp_path, capsys):
    assert cli(config, capsys, "db", "upgrade")[0] == 0
    sessions = session_factory(make_engine(load_config(config, config.parent / "data").database_url))
    UserService(sessions).add_user("li", "a-long-pass", "reviewer")
    truck = replace(record("ev-truck"), category="vehicle", subtype="dirty", zone_id="road", party="沪D·62819")
    truck_id = CaseService(sessions).open_case(truck)[0].id
    shop_id = CaseService(sessions).open_case(replace(record("ev-shop", 5), zone_id="side"))[0].id

    bad = tmp_path / "bad.csv"
    bad.write_text(MERCHANTS + "赵六,赵记,91310115MA1K4AB33T,,JDZ-001,back\n", encoding="utf-8")
    code, out, err = cli(config, capsys, "parties", "import", "--csv", str(bad), "--kind", "merchant")
    assert (code, out) == (2, "") and "nothing imported" in err and "第 5 行 / line 5" in err
    code, out, _ = cli(config, capsys, "parties", "list", "--json")
    assert (code, json.loads(out)) == (0, [])

    for kind, text in (("merchant", MERCHANTS), ("vehicle", VEHICLES)):
        (tmp_path / f"{kind}.csv").write_text(text, encoding="utf-8")
        code, out, _ = cli(config, capsys, "parties", "import", "--csv", str(tmp_path / f"{kind}.csv"), "--kind", kind)
        assert code == 0
    assert json.loads(out) == {"created": 2, "updated": 0, "cases_bound": 1}

    code, _, err = cli(config, capsys, "cases", "party", str(shop_id), "--user", "li")
    assert code == 2 and "李四" in err and "王五" in err  # two merchants front that zone: pick one
    code, out, _ = cli(config, capsys, "parties", "list", "--json", "--kind", "merchant")
    wang_wu = next(p for p in json.loads(out) if p["name"] == "王五")
    code, out, _ = cli(config, capsys, "cases", "party", str(shop_id), "--user", "li", "--party", str(wang_wu["id"]))
    assert code == 0 and json.loads(out)["party_record"]["confirmed_by"] == "li"

    code, out, _ = cli(config, capsys, "cases", "list", "--json")
    listed = {c["id"]: c for c in json.loads(out)}
    assert listed[truck_id]["party"] == "沪D·62819"  # what the evidence read stays as it was
    record_ = listed[truck_id]["party_record"]
    assert (record_["plate"], record_["company"], record_["confirmed_by"]) == ("沪D62819", "浦东渣土运输有限公司", None)
    assert record_["first_minor"] is True and record_["risk"]["grade"] == "low"
    assert listed[shop_id]["party_record"]["shop"] == "王氏杂货" and "due_at" in listed[shop_id]
