"""The case state machine (DESIGN.md §3): which state may follow which, and who may move it.

detected → confirmed | voided is the evidence review (legal requirement 3); the later stages follow
the administrative penalty procedure. The pipeline only ever creates cases in `detected`.

>>> LIFECYCLE.check(State.DETECTED, State.CONFIRMED, Role.REVIEWER, reason=None)
>>> LIFECYCLE.check(State.DETECTED, State.VOIDED, Role.REVIEWER, reason=" ")
Traceback (most recent call last):
...
cases.lifecycle.ReasonRequiredError: detected -> voided 须写明理由 / detected -> voided needs a reason
>>> sorted(LIFECYCLE.next_states(State.DETECTED, Role.REVIEWER))
[<State.CONFIRMED: 'confirmed'>, <State.VOIDED: 'voided'>]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    DETECTED = "detected"
    CONFIRMED = "confirmed"  # evidence review: true, clear, complete, accurate
    VOIDED = "voided"
    WARNED = "warned"  # first minor violation: order to correct, then recheck
    FILED = "filed"  # 立案
    LEGAL_REVIEW = "legal_review"  # major decisions only (legal requirement 10)
    NOTIFIED = "notified"  # facts, proposed penalty and statement channel sent
    STATEMENT = "statement"  # the party made a statement
    DECIDED = "decided"
    DELIVERED = "delivered"
    PUBLISHED = "published"  # 双公示
    WITHDRAWN = "withdrawn"  # publication withdrawn: the decision changed or was revoked (legal requirement 11)
    EXECUTED = "executed"
    CLOSED = "closed"


class Role(StrEnum):
    REVIEWER = "reviewer"  # evidence review
    LEGAL = "legal"  # legal review, filing, decisions
    SUPERVISOR = "supervisor"  # may do any case step
    OPS = "ops"  # operations: points, cameras, health; no case steps
    ADMIN = "admin"  # accounts; no case steps, so account power and case power stay apart


PIPELINE_ACTOR = "pipeline"


class TransitionError(ValueError):
    """A state change the lifecycle does not allow; the message is zh-CN first, English second."""


class InvalidTransitionError(TransitionError):
    """No edge from the current state to the requested one."""


class ForbiddenTransitionError(TransitionError):
    """The edge exists but the actor's role may not take it."""


class ReasonRequiredError(TransitionError):
    """The edge needs a written reason (voiding, reversals)."""


@dataclass(frozen=True)
class Edge:
    """An allowed state change, the roles that may make it and whether it needs a reason."""

    source: State
    target: State
    roles: frozenset[Role]
    needs_reason: bool = False


class Lifecycle:
    """A set of edges, checked on every transition.

    >>> lc = Lifecycle([Edge(State.DETECTED, State.CONFIRMED, frozenset({Role.REVIEWER}))])
    >>> lc.check(State.DETECTED, State.FILED, Role.REVIEWER, None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cases.lifecycle.InvalidTransitionError: 不能从 detected 转到 filed（可转：confirmed） / cannot go ... confirmed)
    """

    def __init__(self, edges: list[Edge]):
        self._edges: dict[tuple[State, State], Edge] = {}
        for edge in edges:
            if (edge.source, edge.target) in self._edges:
                raise ValueError(f"duplicate edge {edge.source} -> {edge.target}")
            self._edges[(edge.source, edge.target)] = edge

    def check(self, source: State, target: State, role: Role, reason: str | None) -> None:
        """Raise a `TransitionError` subclass saying why `role` may not move `source` to `target`."""
        edge = self._edges.get((source, target))
        if edge is None:
            allowed = sorted(t for (s, t) in self._edges if s == source)
            raise InvalidTransitionError(
                f"不能从 {source} 转到 {target}（可转：{', '.join(allowed) or '无，终态'}） / "
                f"cannot go from {source} to {target} (allowed: {', '.join(allowed) or 'none, final state'})"
            )
        if role not in edge.roles:
            roles = ", ".join(sorted(edge.roles))
            raise ForbiddenTransitionError(
                f"角色 {role} 无权将案件从 {source} 转到 {target}（{roles} 可以） / "
                f"role {role} may not move a case from {source} to {target} ({roles} may)"
            )
        if edge.needs_reason and not (reason and reason.strip()):
            raise ReasonRequiredError(f"{source} -> {target} 须写明理由 / {source} -> {target} needs a reason")

    def next_states(self, source: State, role: Role) -> list[State]:
        """The states `role` may move a case in `source` to (for the UI's buttons)."""
        return [t for (s, t), e in self._edges.items() if s == source and role in e.roles]


def _edges() -> list[Edge]:
    review = frozenset({Role.REVIEWER, Role.SUPERVISOR})
    legal = frozenset({Role.LEGAL, Role.SUPERVISOR})
    office = frozenset({Role.REVIEWER, Role.LEGAL, Role.SUPERVISOR})
    s = State
    return [
        Edge(s.DETECTED, s.CONFIRMED, review),
        Edge(s.DETECTED, s.VOIDED, review, needs_reason=True),
        # The legal review after the evidence review (Pudong practice) may still void.
        Edge(s.CONFIRMED, s.VOIDED, legal, needs_reason=True),
        Edge(s.CONFIRMED, s.WARNED, legal),
        Edge(s.CONFIRMED, s.FILED, legal),
        Edge(s.WARNED, s.CLOSED, office, needs_reason=True),  # corrected on recheck
        Edge(s.WARNED, s.FILED, legal, needs_reason=True),  # not corrected
        Edge(s.FILED, s.LEGAL_REVIEW, legal),
        Edge(s.FILED, s.NOTIFIED, legal),
        Edge(s.LEGAL_REVIEW, s.NOTIFIED, legal),
        Edge(s.NOTIFIED, s.STATEMENT, office),
        # Deciding straight from notified means the statement window closed or was waived.
        Edge(s.NOTIFIED, s.DECIDED, legal, needs_reason=True),
        Edge(s.STATEMENT, s.DECIDED, legal),
        Edge(s.DECIDED, s.DELIVERED, office),
        Edge(s.DELIVERED, s.PUBLISHED, legal),
        Edge(s.PUBLISHED, s.EXECUTED, office),
        # A changed decision is withdrawn from publicity, then decided, delivered and published again; a
        # revoked one closes the case.
        Edge(s.PUBLISHED, s.WITHDRAWN, legal, needs_reason=True),
        Edge(s.WITHDRAWN, s.DECIDED, legal, needs_reason=True),
        Edge(s.WITHDRAWN, s.CLOSED, legal, needs_reason=True),
        Edge(s.EXECUTED, s.CLOSED, office),
    ]


LIFECYCLE = Lifecycle(_edges())
