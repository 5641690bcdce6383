"""schemathesis against the app's own OpenAPI schema (issue 28): the app of `feixian run` / `serve`, in process
through its ASGI interface, answers every generated request (valid and invalid per the schema, with and
without the gateway's token) with a documented status, no 5xx but the documented 503, and bodies and headers
that match the schema."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from schemathesis import GenerationMode, checks

from feixian.app import build_app
from feixian.config import load_config
from feixian.runtime import Runtime
from ingest.push_api import PUSH_PATH
from pipeline.bus import MemoryBus
from pipeline.frames import encode_jpeg

REPO = Path(__file__).resolve().parents[1]
TOKEN = "schemathesis-gateway-token"
POINT = "ZX-001"  # the demo registry's push point
SMALL_PROFILE = 100
FULL_PROFILE = 1000
JPEG = encode_jpeg(np.zeros((36, 64, 3), np.uint8))


def make_app(tmp: Path, queue: int):
    """The app of `feixian serve` on the demo registry, with a gateway for its push point and no workers: once
    `queue` frames wait, the point answers 503, as a slow one would."""
    settings_ = {
        "extends": str(REPO / "configs" / "demo.yaml"),
        "plates": {"model": None},
        "gateways": [{"id": "gw", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "points": [POINT]}],
    }
    path = tmp / "settings.yaml"
    path.write_text(yaml.safe_dump(settings_))
    return build_app(Runtime(load_config(path, tmp / "data")), MemoryBus(queue))


@pytest.fixture(autouse=True)
def hypothesis_home(tmp_path: Path) -> None:
    set_hypothesis_home_dir(str(tmp_path / "hypothesis"))


def _cases(schema) -> st.SearchStrategy:
    """(authorised, case): valid and invalid requests per the schema. Half aim at the gateway's point and are
    sent with its token, so they get past 401 and 404 to the checks of the frame itself."""

    def cases(authorised: bool) -> st.SearchStrategy:
        fixed = {"path_parameters": {"point_id": POINT}} if authorised else {}
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        return st.tuples(st.just(authorised), st.one_of(*(schema.as_strategy(mode, **fixed) for mode in modes)))

    return st.booleans().flatmap(cases)


def run_schemathesis(examples: int, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # A queue no run fills: every 5xx here would be a fault (the busy answer is checked below).
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(tmp_path, 1_000_000))
    statuses: Counter[int] = Counter()

    @given(drawn=_cases(schema))
    # The same draws on every run: a red CI is a regression, never a new draw (explore with another seed).
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def one(drawn) -> None:
        authorised, case = drawn
        # The token goes with the call, not the case: schemathesis then knows it is real, and checks that the
        # same request without it, or with a wrong one, is refused.
        headers = {"Authorization": f"Bearer {TOKEN}"} if authorised else None
        # Not checked: that every schema-valid request is taken. No schema can say "a decodable JPEG stamped
        # within minutes of the server clock", so most valid-looking frames are rightly refused with 422.
        response = case.call_and_validate(headers=headers, excluded_checks=[checks.positive_data_acceptance])
        statuses[response.status_code] += 1

    one()
    with capsys.disabled():
        print(f"\nschemathesis: {sum(statuses.values())} cases, 0 failures, answers {dict(sorted(statuses.items()))}")
    assert {401, 422} <= set(statuses)


def test_every_answer_matches_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_schemathesis(SMALL_PROFILE, tmp_path, capsys)


@pytest.mark.slow
def test_every_answer_matches_the_schema_long(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_schemathesis(FULL_PROFILE, tmp_path, capsys)


def test_taken_and_busy_answers_match_the_schema(tmp_path: Path) -> None:
    # Frames taken, then the point's queue (4 frames, no worker) full: the 202 and the documented 503 with its
    # Retry-After checked against the schema too.
    operation = schemathesis.openapi.from_asgi("/openapi.json", make_app(tmp_path, 4))[PUSH_PATH]["POST"]
    start = datetime.now(UTC) - timedelta(minutes=1)
    answers = []
    for n in range(6):
        case = operation.Case(
            path_parameters={"point_id": POINT},
            headers={"Authorization": f"Bearer {TOKEN}", "X-Capture-Time": (start + timedelta(seconds=n)).isoformat()},
            body=JPEG,
            media_type="image/jpeg",
        )
        answers.append(case.call_and_validate(excluded_checks=[checks.not_a_server_error]).status_code)
    assert answers == [202] * 4 + [503] * 2
