"""The case state machine: edges, roles and reasons (pure unit tests)."""

from __future__ import annotations

import pytest

from cases.lifecycle import (
    LIFECYCLE,
    Edge,
    ForbiddenTransitionError,
    InvalidTransitionError,
    Lifecycle,
    ReasonRequiredError,
    Role,
    State,
)


def test_evidence_review_is_the_only_way_out_of_detected():
    assert set(LIFECYCLE.next_states(State.DETECTED, Role.REVIEWER)) == {State.CONFIRMED, State.VOIDED}
    assert set(LIFECYCLE.next_states(State.DETECTED, Role.SUPERVISOR)) == {State.CONFIRMED, State.VOIDED}
    with pytest.raises(InvalidTransitionError, match="cannot go from detected to filed .allowed: confirmed, voided"):
        LIFECYCLE.check(State.DETECTED, State.FILED, Role.SUPERVISOR, None)


@pytest.mark.parametrize("role", [Role.OPS, Role.ADMIN, Role.LEGAL])
def test_other_roles_may_not_review_evidence(role):
    assert LIFECYCLE.next_states(State.DETECTED, role) == []
    with pytest.raises(ForbiddenTransitionError, match=f"role {role.value} may not"):
        LIFECYCLE.check(State.DETECTED, State.CONFIRMED, role, None)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_voiding_needs_a_reason(reason):
    with pytest.raises(ReasonRequiredError):
        LIFECYCLE.check(State.DETECTED, State.VOIDED, Role.REVIEWER, reason)
    LIFECYCLE.check(State.DETECTED, State.VOIDED, Role.REVIEWER, "plate unreadable")


@pytest.mark.parametrize("final", [State.VOIDED, State.CLOSED])
def test_final_states_lead_nowhere(final):
    for role in Role:
        assert LIFECYCLE.next_states(final, role) == []
    with pytest.raises(InvalidTransitionError, match="none, final state"):
        LIFECYCLE.check(final, State.DETECTED, Role.SUPERVISOR, "reopen")


def test_every_state_is_reachable_from_detected_and_can_end():
    reachable, frontier = {State.DETECTED}, [State.DETECTED]
    while frontier:
        state = frontier.pop()
        for nxt in LIFECYCLE.next_states(state, Role.SUPERVISOR):
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(State)


def test_the_full_penalty_path_is_allowed_for_the_right_roles():
    path = [
        (State.DETECTED, State.CONFIRMED, Role.REVIEWER, None),
        (State.CONFIRMED, State.FILED, Role.LEGAL, None),
        (State.FILED, State.LEGAL_REVIEW, Role.LEGAL, None),
        (State.LEGAL_REVIEW, State.NOTIFIED, Role.LEGAL, None),
        (State.NOTIFIED, State.STATEMENT, Role.REVIEWER, None),
        (State.STATEMENT, State.DECIDED, Role.LEGAL, None),
        (State.DECIDED, State.DELIVERED, Role.REVIEWER, None),
        (State.DELIVERED, State.PUBLISHED, Role.LEGAL, None),
        (State.PUBLISHED, State.EXECUTED, Role.REVIEWER, None),
        (State.EXECUTED, State.CLOSED, Role.SUPERVISOR, None),
    ]
    for source, target, role, reason in path:
        LIFECYCLE.check(source, target, role, reason)


def test_deciding_without_a_statement_needs_a_reason():
    with pytest.raises(ReasonRequiredError):
        LIFECYCLE.check(State.NOTIFIED, State.DECIDED, Role.LEGAL, None)


def test_duplicate_edges_are_refused():
    edge = Edge(State.DETECTED, State.CONFIRMED, frozenset({Role.REVIEWER}))
    with pytest.raises(ValueError, match="duplicate edge"):
        Lifecycle([edge, edge])
