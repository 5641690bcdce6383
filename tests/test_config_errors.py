"""Settings and points files with every kind of mistake (issue 28): `feixian replay --config F` stops with exit 2
and one message naming the file, the key and the reason, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from feixian.cli import main

POINT = """\
  - id: JDZ-001
    name: 博乐路
    town: 嘉定镇
    device_id: CAM-1
    gps: [31.38, 121.25]
    source: {kind: push}
    announced_on: 2024-01-01
    zones:
      - {id: front, kind: no_occupation, polygon: [[0, 0], [10, 0], [10, 10]]}
"""
POINTS = "points:\n" + POINT
GATEWAY = "  - {id: gw, token_sha256: '" + "a" * 64 + "', points: [JDZ-001]}\n"
SETTINGS = "points_file: points.yaml\nmodel: {path: m.onnx}\ngateways:\n" + GATEWAY


def settings_with(old: str, new: str) -> tuple[str, str]:
    assert old in SETTINGS
    return SETTINGS.replace(old, new), POINTS


def points_with(old: str, new: str) -> tuple[str, str]:
    assert old in POINTS
    return SETTINGS, POINTS.replace(old, new)


# (what is wrong, (settings text, points text), file the message names, key path, reason)
MISTAKES = [
    ("settings not YAML", settings_with("model: {path: m.onnx}", "model: {path: m.onnx"), "settings", "line", "YAML"),
    ("settings not a mapping", ("- just\n- a list\n", POINTS), "settings", "top level", "expected a mapping"),
    ("unknown key", settings_with("model:", "modle: {}\nmodel:"), "settings", "modle", "Extra inputs"),
    (
        "duplicate section",
        settings_with("gateways:", "model: {path: x.onnx}\ngateways:"),
        "settings",
        "'model'",
        "duplicate key",
    ),
    ("missing section", settings_with("model: {path: m.onnx}\n", ""), "settings", "model", "Field required"),
    (
        "wrong type",
        settings_with("gateways:", "server: {port: eighty}\ngateways:"),
        "settings",
        "server.port",
        "valid integer",
    ),
    (
        "truck stage too unsure",
        settings_with(
            "model: {path: m.onnx}", "model: {path: m.onnx, truck_state: {path: t.onnx, min_confidence: 0.3}}"
        ),
        "settings",
        "model.truck_state.min_confidence",
        "greater than 0.34",
    ),
    (
        "out of bounds",
        settings_with("gateways:", "server: {max_frame_pixels: 10}\ngateways:"),
        "settings",
        "server.max_frame_pixels",
        "greater than or equal to 4096",
    ),
    (
        "gateway rate out of bounds",
        settings_with("points: [JDZ-001]}", "points: [JDZ-001], max_fps: 0}"),
        "settings",
        "gateways.0.max_fps",
        "greater than 0",
    ),
    (
        "disk floor negative",
        settings_with("gateways:", "evidence: {min_free_mb: -1}\ngateways:"),
        "settings",
        "evidence.min_free_mb",
        "greater than or equal to 0",
    ),
    (
        "bad token hash",
        settings_with("'" + "a" * 64 + "'", "'not-hex'"),
        "settings",
        "gateways.0.token_sha256",
        "match pattern",
    ),
    ("missing points file", settings_with("points.yaml", "absent.yaml"), "settings", "points_file", "does not exist"),
    (
        "gateway names unknown point",
        settings_with("[JDZ-001]", "[JDZ-001, NOPE]"),
        "settings",
        "gateways.0.points",
        "'NOPE'",
    ),
    ("points not YAML", points_with("gps: [31.38, 121.25]", "gps: [31.38, 121.25"), "points", "line", "YAML"),
    ("duplicate point ids", (SETTINGS, POINTS + POINT), "points", "points:", "duplicate point ids: ['JDZ-001']"),
    (
        "polygon of 2 points",
        points_with("[[0, 0], [10, 0], [10, 10]]", "[[0, 0], [10, 0]]"),
        "points",
        "points.0.zones.0.polygon",
        "at least 3 items",
    ),
    (
        "unknown zone kind",
        points_with("kind: no_occupation", "kind: pavement"),
        "points",
        "points.0.zones.0.kind",
        "'no_occupation', 'roadway' or 'site_exit'",
    ),
    ("bad date", points_with("2024-01-01", "2024-13-45"), "points", "points.0.announced_on", "valid date"),
    (
        "latitude out of range",
        points_with("[31.38, 121.25]", "[131.38, 121.25]"),
        "points",
        "points.0.gps.0",
        "less than or equal to 90",
    ),
    ("bad point id", points_with("id: JDZ-001", "id: JDZ 001"), "points", "points.0.id", "match pattern"),
    (
        "file source without uri",
        points_with("{kind: push}", "{kind: file}"),
        "points",
        "points.0.source",
        "needs a uri",
    ),
    (
        "duplicate zone ids",
        points_with(
            "    zones:\n", "    zones:\n      - {id: front, kind: roadway, polygon: [[0, 0], [5, 0], [5, 5]]}\n"
        ),
        "points",
        "points.0.zones",
        "zone ids must be unique",
    ),
    (
        "dwell out of bounds",
        points_with("    zones:\n", "    dwell_seconds: 1\n    zones:\n"),
        "points",
        "points.0.dwell_seconds",
        "greater than or equal to 5",
    ),
]


@pytest.mark.parametrize(("files", "where", "key", "reason"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_a_config_mistake_is_one_message_naming_file_key_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture, files: tuple[str, str], where: str, key: str, reason: str
) -> None:
    settings_text, points_text = files
    paths = {"settings": tmp_path / "settings.yaml", "points": tmp_path / "points.yaml"}
    paths["settings"].write_text(settings_text, encoding="utf-8")
    paths["points"].write_text(points_text, encoding="utf-8")

    code = main(["replay", "--config", str(paths["settings"]), "--data-dir", str(tmp_path / "data")])

    out = capsys.readouterr()
    assert code == 2
    assert out.out == ""
    message = out.err
    assert message.startswith(f"feixian: {paths[where]}: "), message
    assert key in message and reason in message, message
    assert "Traceback" not in message and 'File "' not in message
    # One message: the file and its mistakes, nothing from deeper down (a logger, a second error).
    assert message.count("feixian: ") == 1


def test_the_value_given_is_shown_beside_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text(SETTINGS.replace("gateways:", "server: {port: eighty}\ngateways:"), encoding="utf-8")
    (tmp_path / "points.yaml").write_text(POINTS, encoding="utf-8")
    assert main(["replay", "--config", str(settings), "--data-dir", str(tmp_path / "data")]) == 2
    assert "server.port: Input should be a valid integer, unable to parse string as an integer (got 'eighty')" in (
        capsys.readouterr().err
    )
