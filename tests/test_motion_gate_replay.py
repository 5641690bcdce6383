"""A replay with the motion gate raises the same events as one that detects every frame: a generated street
scenario, the shipped model and settings, the full pipeline (`feixian replay`'s), gated and not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cases.schema import case_to_json
from feixian.config import load_config
from feixian.runtime import replay
from training.bench import with_gate
from training.evaluate import deployment_settings, scenario_runtime, score_scenario, settings_for
from training.synth.scenario import write_scenario
from training.synth.timeline import ScenarioSpec

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    # Held out (seed 2001 is never trained or tuned on); short, with a short dwell so episodes fit in it.
    spec = ScenarioSpec(name="gate-street", seed=2001, duration_s=40, dwell_s=10, kind="street")
    out = tmp_path_factory.mktemp("scenario") / spec.name
    write_scenario(spec, out, progress=False)
    return out


def run(scenario: Path, data: Path, gated: bool) -> tuple[list[dict], int, int]:
    """The cases of one replay, the frames analysed and the frames the gate let through undetected."""
    settings = settings_for(load_config(SHIPPED).model_path, deployment_settings(str(SHIPPED)))
    rt = scenario_runtime(scenario, with_gate(settings, gated), data)
    result = replay(rt)
    assert not result.errors
    stats = list(result.stats.values())
    return [case_to_json(c) for c in rt.cases.all_cases()], sum(s.frames for s in stats), sum(s.gated for s in stats)


def test_the_gated_replay_raises_the_events_of_detecting_every_frame(scenario: Path, tmp_path: Path) -> None:
    every, frames, none_gated = run(scenario, tmp_path / "every", gated=False)
    gated, gated_frames, skipped = run(scenario, tmp_path / "gated", gated=True)
    assert none_gated == 0 and gated_frames == frames
    assert skipped > 0, "the scenario must have still frames, or this test shows nothing"
    truth = json.loads((scenario / "scenario.json").read_text(encoding="utf-8"))
    assert truth["events"], "the scenario must hold events"
    scored_every, scored_gated = score_scenario(truth, every), score_scenario(truth, gated)
    for family in ("occupation", "vehicle"):
        assert scored_gated[family]["tp"] >= scored_every[family]["tp"], family
        assert scored_gated[family]["fp"] <= scored_every[family]["fp"], family
    key = lambda c: (c["category"], c["subtype"], c["zone_id"])  # noqa: E731
    assert sorted(map(key, gated)) == sorted(map(key, every))
