"""The review UI benchmark's seeding (`training.review_bench`), on PostgreSQL: the cases it bulk-inserts are valid
cases (states as planned, each with a sound hash chain, evidence the case page serves), and the app lists those
awaiting review in its queue. No timing is checked here: `make bench` measures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import psycopg
import pytest
from conftest import PG_ADMIN, postgres_database
from fastapi.testclient import TestClient
from review_ui_seed import NOW, PASSWORD, POINT, SECRET
from test_cases_service import stored_chain
from test_ops_page import sign_in

from cases.db import make_engine, session_factory, upgrade
from cases.service import CaseService
from cases.store import LocalObjectStore
from cases.users import UserService
from review_ui.app import ReviewServices, create_app
from review_ui.void_reasons import VOID_REASONS
from training.review_bench import bench_database, seed_cases, write_evidence

pytestmark = pytest.mark.postgres


def test_seeded_cases_are_valid_and_the_queue_lists_those_awaiting_review(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "evidence")
    evidence = write_evidence(store, POINT, NOW.replace(day=1))
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            seeded = seed_cases(engine, 50, evidence, [POINT], NOW, detected_share=0.1)
            sessions = session_factory(engine)
            cases, users = CaseService(sessions, clock=lambda: NOW), UserService(sessions)
            users.add_user("rev", PASSWORD, "reviewer")
            stored = [cases.get(i) for i in seeded.case_ids]
            assert len(stored) == 50 and seeded.detected_ids == seeded.case_ids[-5:]
            states = Counter(c.state for c in stored)
            assert states["detected"] == 5 and states["confirmed"] + states["voided"] == 45
            assert all(c.state == "detected" for c in stored[-5:])
            # The queue's order, as the case page's previous and next read it (ids only), over the partial index.
            assert cases.list_case_ids(state="detected") == seeded.detected_ids
            assert [c.id for c in cases.list_cases(state="detected")] == seeded.detected_ids
            assert [stored_chain(cases, c) for c in stored] == [[]] * 50
            assert {(c.point_id, c.zone_id, c.category) for c in stored} == {(POINT.id, "front", "occupation")}
            services = ReviewServices(
                cases=cases, users=users, store=store, secret_key=SECRET, points={POINT.id: POINT}, clock=lambda: NOW
            )
            client = TestClient(create_app(services))
            sign_in(client, "rev")
            queue = client.get("/queue").text
            assert all(f'href="/cases/{i}"' in queue for i in seeded.detected_ids)
            assert f'href="/cases/{seeded.case_ids[0]}"' not in queue  # decided long ago
            voided = next(c for c in stored if c.state == "voided")
            page = client.get(f"/cases/{voided.id}")
            assert page.status_code == 200 and VOID_REASONS[0][0] in page.text
            name = next(iter(evidence.evidence))
            assert client.get(f"/cases/{voided.id}/evidence/{name}").status_code == 200
        finally:
            engine.dispose()


def test_the_bench_database_is_dropped_afterwards() -> None:
    try:
        psycopg.connect(PG_ADMIN).close()
    except psycopg.OperationalError as e:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {e}")
    with bench_database() as url:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN) as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    with psycopg.connect(PG_ADMIN) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None
