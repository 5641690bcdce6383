import re
from datetime import date
from pathlib import Path

import pytest

from feixian.config import ConfigError, load_config, load_points
from feixian.domain import Category

POINT = """
points:
  - id: JDZ-001
    name: 博乐路
    town: 嘉定镇
    device_id: CAM-1
    gps: [31.38, 121.25]
    source: {kind: push}
    announced_on: 2024-01-01
    legal_review: true
    technical_review: true
    calibration_valid_until: 2030-01-01
    categories: [occupation]
    zones:
      - {id: front, kind: no_occupation, polygon: [[0, 0], [10, 0], [10, 10]]}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_points_load_and_legal_gate(tmp_path):
    (p,) = load_points(write(tmp_path, "points.yaml", POINT))
    assert p.zones[0].kind == "no_occupation"
    assert p.may_raise_cases(Category.OCCUPATION, date(2026, 1, 1)) == (True, "ok")
    assert p.may_raise_cases(Category.VEHICLE, date(2026, 1, 1))[0] is False
    assert p.may_raise_cases(Category.OCCUPATION, date(2023, 1, 1)) == (False, "point not announced")
    assert p.may_raise_cases(Category.OCCUPATION, date(2031, 1, 1)) == (False, "calibration expired")


def test_bad_points_file_names_file_key_and_reason(tmp_path):
    bad = POINT.replace("gps: [31.38, 121.25]", "gps: [131.38, 121.25]")
    path = write(tmp_path, "points.yaml", bad)
    with pytest.raises(ConfigError) as e:
        load_points(path)
    msg = str(e.value)
    assert str(path) in msg and "points.0.gps.0" in msg and "less than or equal to 90" in msg


def test_unknown_key_and_missing_uri_rejected(tmp_path):
    with pytest.raises(ConfigError, match="points.0.colour"):
        load_points(write(tmp_path, "p.yaml", POINT + "    colour: red\n"))
    with pytest.raises(ConfigError, match="a file source needs a uri"):
        load_points(write(tmp_path, "p.yaml", POINT.replace("{kind: push}", "{kind: file}")))


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_points(write(tmp_path, "p.yaml", "points: [\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_points(tmp_path / "absent.yaml")


def test_settings_resolve_paths_and_gateways(tmp_path, monkeypatch):
    write(tmp_path, "points.yaml", POINT)
    settings = write(
        tmp_path,
        "s.yaml",
        "model: {path: m.onnx}\ngateways:\n  - {id: g, token_sha256: '" + "a" * 64 + "', points: [JDZ-001]}\n",
    )
    monkeypatch.delenv("DATABASE_URL", raising=False)
    cfg = load_config(settings, tmp_path / "data")
    assert cfg.model_path == (tmp_path / "m.onnx").resolve()
    assert cfg.database_url.startswith("sqlite:///") and cfg.database_url.endswith("data/feixian.db")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://x/y")
    assert cfg.database_url == "postgresql+psycopg://x/y"
    settings.write_text(settings.read_text().replace("[JDZ-001]", "[NOPE]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown point ids"):
        load_config(settings)


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_shipped_settings_announce_nothing_and_hold_no_gateway():
    cfg = load_config(CONFIGS / "default.yaml")
    assert cfg.settings.gateways == []
    assert cfg.model_path.is_file() and cfg.plate_model_path.is_file()
    assert all(not p.may_raise_cases(c, date.today())[0] for p in cfg.points for c in Category)


def test_demo_is_the_shipped_settings_with_demo_points_gateway_and_rendered_world_model():
    demo, default = load_config(CONFIGS / "demo.yaml"), load_config(CONFIGS / "default.yaml")
    kept = {"points_file", "gateways", "model", "rules"}
    assert demo.settings.model_dump(exclude=kept) == default.settings.model_dump(exclude=kept)
    # the rules are each detector's own tuning (seed 3001): v15 takes a larger share of dirty views than v18
    demo_rules, rules = demo.settings.rules.model_dump(), default.settings.rules.model_dump()
    assert (demo_rules["vehicle"].pop("min_share"), rules["vehicle"].pop("min_share")) == (0.7, 0.5)
    seen = (demo_rules["occupation"].pop("min_seen_fraction"), rules["occupation"].pop("min_seen_fraction"))
    assert seen == (0.5, 0.2)
    merge = (demo_rules["vehicle"].pop("merge_within_s"), rules["vehicle"].pop("merge_within_s"))
    assert merge == (1.0, 3.0)  # v18 loses a faint truck's track for longer before finding it again
    assert demo_rules == rules
    # the demo's streets are rendered: only the detector differs (the one trained on rendered streets, which judges
    # its trucks' state itself, without the stage measured behind v17)
    changed = {"path", "truck_state", "item_check"}
    assert demo.settings.model.model_dump(exclude=changed) == default.settings.model.model_dump(exclude=changed)
    assert (demo.stage_path("truck_state"), default.stage_path("truck_state").name) == (
        None,
        "feixian-truckstate-v1.onnx",
    )
    assert (demo.model_path.name, default.model_path.name) == ("feixian-street-v15.onnx", "feixian-street-v18.onnx")
    assert demo.plate_model_path == default.plate_model_path
    assert [g.id for g in demo.settings.gateways] == ["demo-gateway"]
    assert {p.town for p in demo.points} <= {"嘉定镇", "真新", "工业区"}
    assert all(p.may_raise_cases(p.categories[0], date(2026, 3, 3)) == (True, "ok") for p in demo.points)


def test_bureau_example_has_no_gateway_and_no_point_announced_or_reviewed():
    from feixian.runtime import points_raising_no_cases

    example = load_config(CONFIGS / "example.yaml")
    assert example.settings.gateways == [] and example.points
    text = (CONFIGS / "example.yaml").read_text(encoding="utf-8")
    assert not re.search("[0-9a-f]{64}", text) and "demo-gateway" not in text  # no token hash, not even commented
    for p in example.points:
        assert (p.announced_on, p.legal_review, p.technical_review) == (None, False, False)
    reasons = points_raising_no_cases(example.points, example.settings.published_categories, date.today())
    assert reasons == {p.id: "point not announced" for p in example.points}


def test_run_warns_at_start_of_each_point_that_can_raise_no_case(caplog):
    from feixian.runtime import warn_of_points_raising_no_cases

    example = load_config(CONFIGS / "example.yaml")
    with caplog.at_level("WARNING", logger="feixian.runtime"):
        warn_of_points_raising_no_cases(example, example.points, date.today())
    (record,) = caplog.records
    assert "JDZ-101 raises no cases (point not announced)" in record.getMessage()
    assert str(CONFIGS / "example-points.yaml") in record.getMessage()
    caplog.clear()
    demo = load_config(CONFIGS / "demo.yaml")
    warn_of_points_raising_no_cases(demo, demo.points, date(2026, 3, 3))
    assert caplog.records == []


def test_demo_points_match_the_generated_demo_scenes():
    from training.synth.scenario import demo_points

    registry = {p.id: p for p in load_config(CONFIGS / "demo.yaml").points}
    for generated in demo_points():
        shipped = registry[generated.id]
        assert shipped.zones == generated.zones
        assert shipped.dwell_seconds == generated.dwell_seconds
        assert shipped.categories == generated.categories
        assert shipped.source.start_time == generated.source.start_time


def test_track_threshold_above_conf_threshold_is_rejected(tmp_path):
    write(tmp_path, "points.yaml", POINT)
    settings = write(tmp_path, "s.yaml", "model: {path: m.onnx, conf_threshold: 0.3, track_threshold: 0.4}\n")
    with pytest.raises(ConfigError, match="track_threshold must not exceed conf_threshold"):
        load_config(settings)


def test_rules_section_reaches_the_rules_and_is_validated(tmp_path):
    from feixian.runtime import Runtime

    write(tmp_path, "points.yaml", POINT)
    text = "model: {path: m.onnx}\nrules:\n  occupation: {cooldown_s: 40}\n  vehicle: {min_share: 0.6}\n"
    cfg = load_config(write(tmp_path, "s.yaml", text), data_dir=tmp_path / "data")
    (rule,) = Runtime(cfg).make_rules(cfg.points[0])  # the point enables occupation only
    assert rule.settings.cooldown_s == 40 and rule.settings.max_unseen_s == 15  # unnamed keys keep defaults
    assert cfg.settings.rules.vehicle.min_share == 0.6
    with pytest.raises(ConfigError, match=r"rules.vehicle.min_share.*less than or equal to 1"):
        load_config(write(tmp_path, "s.yaml", "model: {path: m.onnx}\nrules: {vehicle: {min_share: 1.5}}\n"))
    with pytest.raises(ConfigError, match="cooldown_s must be at least max_unseen_s"):
        load_config(write(tmp_path, "s.yaml", "model: {path: m.onnx}\nrules: {occupation: {cooldown_s: 5}}\n"))


def test_extends_lays_mappings_over_the_file_it_names(tmp_path):
    (tmp_path / "shipped").mkdir()
    write(tmp_path / "shipped", "points.yaml", POINT)
    write(
        tmp_path / "shipped",
        "base.yaml",
        "points_file: points.yaml\nmodel: {path: ../models/m.onnx, conf_threshold: 0.3}\n"
        "plates: {model: ../models/p.onnx, province_model: ../models/q.onnx}\n"
        "rules: {occupation: {cooldown_s: 40}, vehicle: {min_share: 0.6}}\n"
        "published_categories: [occupation, vehicle]\n",
    )
    site = write(
        tmp_path,
        "site.yaml",
        "extends: shipped/base.yaml\nmodel: {iou_threshold: 0.6}\nrules: {vehicle: {min_frames: 9}}\n"
        "published_categories: [vehicle]\n",
    )
    cfg = load_config(site)
    # Mappings merge key by key; lists and values replace.
    assert (cfg.settings.model.conf_threshold, cfg.settings.model.iou_threshold) == (0.3, 0.6)
    assert cfg.settings.rules.occupation.cooldown_s == 40
    assert (cfg.settings.rules.vehicle.min_share, cfg.settings.rules.vehicle.min_frames) == (0.6, 9)
    assert cfg.settings.published_categories == [Category.VEHICLE]
    # Inherited paths stay relative to the file that wrote them.
    assert cfg.model_path == (tmp_path / "models" / "m.onnx").resolve()
    assert cfg.plate_model_path == (tmp_path / "models" / "p.onnx").resolve()
    assert cfg.settings.plates.province_model_path(cfg.base_dir) == (tmp_path / "models" / "q.onnx").resolve()
    assert [p.id for p in cfg.points] == ["JDZ-001"]


def test_extends_chains_and_the_extending_file_wins(tmp_path):
    write(tmp_path, "points.yaml", POINT)
    write(tmp_path, "a.yaml", "model: {path: a.onnx, conf_threshold: 0.3}\nserver: {port: 8001}\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\nserver: {port: 8002}\n")
    cfg = load_config(write(tmp_path, "c.yaml", "extends: b.yaml\nmodel: {path: c.onnx}\n"))
    assert (cfg.settings.server.port, cfg.settings.model.conf_threshold) == (8002, 0.3)
    assert cfg.model_path == (tmp_path / "c.onnx").resolve()


def test_extends_a_missing_file_names_the_extending_file(tmp_path):
    path = write(tmp_path, "site.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: extends: {tmp_path / 'nowhere.yaml'} does not exist or is not a file"


def test_extends_in_a_cycle_is_refused(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\nmodel: {path: m.onnx}\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "a.yaml")
    assert str(e.value).startswith(f"{tmp_path / 'b.yaml'}: extends: a.yaml leads back")
    assert "(a.yaml -> b.yaml -> a.yaml)" in str(e.value)
    with pytest.raises(ConfigError, match="leads back"):
        load_config(write(tmp_path, "self.yaml", "extends: self.yaml\n"))


def test_extends_a_file_that_is_no_mapping_or_no_path(tmp_path):
    write(tmp_path, "list.yaml", "- model\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'list.yaml'}: expected a mapping at the top level$"):
        load_config(write(tmp_path, "site.yaml", "extends: list.yaml\n"))
    with pytest.raises(ConfigError, match=r"site.yaml: extends: expected the path of a settings file \(got \[1\]\)"):
        load_config(write(tmp_path, "site.yaml", "extends: [1]\n"))


def test_an_invalid_inherited_key_names_the_files_extended(tmp_path):
    write(tmp_path, "points.yaml", POINT)
    write(tmp_path, "base.yaml", "model: {path: m.onnx}\nserver: {port: 0}\n")
    path = write(tmp_path, "site.yaml", "extends: base.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    first, second = str(e.value).splitlines()
    assert first == f"{path}: invalid configuration (keys it does not set come from {tmp_path / 'base.yaml'})"
    assert second.startswith("  server.port: Input should be greater than or equal to 1")
