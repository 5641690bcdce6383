"""The transition hash chain (pure unit tests)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from cases.audit import GENESIS, Link, StoredLink, chain_problems, link_hash

EVENT, MANIFEST = "e" * 32, "ab" * 32
T0 = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)


def _chain(links: list[Link], event: str = EVENT, manifest: str = MANIFEST) -> list[StoredLink]:
    stored, prev = [], GENESIS
    for link in links:
        h = link_hash(prev, event, manifest, link)
        stored.append(StoredLink(link, prev, h))
        prev = h
    return stored


LINKS = [
    Link(0, None, "detected", "pipeline", T0, None),
    Link(1, "detected", "voided", "li", T0 + timedelta(minutes=5), "plate unreadable"),
]


def test_intact_chain_has_no_problems():
    assert chain_problems(EVENT, MANIFEST, "voided", _chain(LINKS)) == []


def test_editing_a_field_breaks_its_hash():
    chain = _chain(LINKS)
    chain[1] = replace(chain[1], link=replace(chain[1].link, reason="changed my mind"))
    assert chain_problems(EVENT, MANIFEST, "voided", chain) == ["transition seq 1: hash does not match its contents"]


def test_rehashing_an_edited_row_still_breaks_the_next_link():
    chain = _chain(LINKS + [Link(2, "voided", "closed", "x", T0 + timedelta(hours=1), "r")])
    edited = replace(chain[1].link, actor="someone else")
    chain[1] = StoredLink(edited, chain[1].prev_hash, link_hash(chain[1].prev_hash, EVENT, MANIFEST, edited))
    assert chain_problems(EVENT, MANIFEST, "closed", chain) == [
        "transition seq 2: prev_hash does not match the previous transition's hash"
    ]


def test_deleted_row_and_state_mismatch_are_reported():
    chain = _chain(LINKS)
    problems = chain_problems(EVENT, MANIFEST, "voided", chain[1:])
    assert "transition seq 1: expected seq 0 (missing or reordered row)" in problems
    assert chain_problems(EVENT, MANIFEST, "confirmed", chain) == [
        "case state confirmed differs from the last transition's voided"
    ]
    assert chain_problems(EVENT, MANIFEST, "detected", []) == ["no transitions recorded"]


def test_the_chain_binds_the_case_identity_and_its_manifest():
    chain = _chain(LINKS)
    assert chain_problems(EVENT, "cd" * 32, "voided", chain) != []
    assert chain_problems("f" * 32, MANIFEST, "voided", chain) != []


def test_time_zone_of_the_stored_value_does_not_change_the_hash():
    shanghai = LINKS[0].at.astimezone(timezone(timedelta(hours=8)))
    assert link_hash(GENESIS, EVENT, MANIFEST, LINKS[0]) == link_hash(
        GENESIS, EVENT, MANIFEST, replace(LINKS[0], at=shanghai)
    )
