"""deploy/ is valid (issue 26 item 3): the Grafana dashboard loads and asks only for series the app exports, showing
every family it exports; the compose file parses with the services it promises, no host network, and commands the
CLI knows; its settings load as feixian's own and keep the tuned rules of configs/default.yaml."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from test_metrics_endpoint import FILE_POINTS, PUSHED, eventually, ops_world

from feixian.cli import build_parser
from feixian.config import load_config

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
METRIC = re.compile(r"\bfeixian_[a-z0-9_]+")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[set[str], set[str]]:
    """(family names, sample names) of `/metrics` once a short run has filed its cases."""
    with ops_world(tmp_path_factory.mktemp("deploy")) as world:
        world.replay(FILE_POINTS[0])
        world.push(PUSHED, datetime.now(UTC) - timedelta(minutes=5))
        eventually(world.settled, "every frame is judged")
        world.live.stop(60)
        eventually(lambda: "feixian_point_frames_per_second" in world.scrape(), "a frames/s window")
        families = world.scrape()
    return set(families), {s.name for samples in families.values() for s in samples}


def dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / "feixian.json").read_text(encoding="utf-8"))


def test_dashboard_panels_ask_for_exported_series_only_and_show_every_family(exported) -> None:
    families, samples = exported
    panels = dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels), "panel ids are unique"
    asked: set[str] = set()
    for p in panels:
        assert p["targets"], p["title"]
        for target in p["targets"]:
            names = set(METRIC.findall(target["expr"]))
            assert names, (p["title"], target["expr"])
            assert names <= samples, f"{p['title']}: {names - samples} not exported"
            asked |= names
    shown = {f for f in families if any(n == f or n.startswith(f + "_") for n in asked)}
    assert shown == families


def test_dashboard_uses_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for p in dashboard()["panels"]:
        assert p["datasource"]["uid"] == uid, p["title"]
    app, workers = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())["scrape_configs"]
    assert (app["metrics_path"], app["static_configs"][0]["targets"]) == ("/metrics", ["app:8000"])
    # Every worker replica, by the compose service name, on the port its command serves metrics at.
    (found,) = workers["dns_sd_configs"]
    assert (workers["metrics_path"], found["names"], found["port"]) == ("/metrics", ["worker"], 9108)
    command = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))["services"]["worker"]["command"]
    args = build_parser().parse_args(command[1:])
    assert (args.metrics_host, args.metrics_port) == ("0.0.0.0", 9108)


def test_compose_file_parses_with_the_services_and_no_host_network() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"app", "postgres", "minio", "redis", "prometheus", "grafana"} <= set(services)
    assert all((n or {}).get("driver") != "host" for n in compose.get("networks", {}).values())
    for name, service in services.items():
        assert service.get("network_mode") != "host", name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the loopback address"
    command = services["app"]["command"]
    assert command[:2] == ["feixian", "serve"]
    build_parser().parse_args(command[1:])  # the CLI takes these flags (raises SystemExit if not)
    # Scale-out: the app publishes to Redis, two worker replicas run the points (settings: bus.backend redis).
    worker = services["worker"]
    assert worker["command"][:2] == ["feixian", "worker"] and worker["deploy"]["replicas"] == 2
    build_parser().parse_args(worker["command"][1:])
    assert "profiles" not in services["redis"] and "redis" in services["app"]["depends_on"]
    assert "postgres:5432" in services["app"]["environment"]["DATABASE_URL"]


def test_deploy_settings_load_and_keep_the_tuned_rules(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "settings.yaml", tmp_path / "settings.yaml")
    shutil.copy(REPO / "configs" / "example-points.yaml", tmp_path / "points.yaml")
    cfg = load_config(tmp_path / "settings.yaml", tmp_path / "data")
    assert cfg.settings.evidence.backend == "s3" and cfg.settings.evidence.s3_endpoint == "minio:9000"
    assert cfg.settings.bus.backend == "redis" and cfg.settings.bus.redis.url == "redis://redis:6379/0"
    default = load_config(REPO / "configs" / "default.yaml", tmp_path / "default")
    assert cfg.settings.rules == default.settings.rules
    assert cfg.settings.motion == default.settings.motion
    assert cfg.settings.bus.max_pending == default.settings.bus.max_pending
    paths = {"path": True, "truck_state": {"path"}, "item_check": {"path"}}
    assert cfg.settings.model.model_dump(exclude=paths) == default.settings.model.model_dump(exclude=paths)
    assert cfg.model_path.name == default.model_path.name and cfg.plate_model_path.name == default.plate_model_path.name
    for stage in ("truck_state", "item_check"):
        assert cfg.stage_path(stage).name == default.stage_path(stage).name
