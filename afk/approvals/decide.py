"""The one decision rule: what a vote does to a request.

Every path that brings a human's answer (the in-memory provider, the console provider, a
custom provider, ``Runner.resolve`` in any process, the CLI, the HTTP API) calls
:func:`decide`. It is pure: it reads the request, the votes so far and the clock, and either
returns the outcome or raises the refusal. Stores only compare-and-set what it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from afk.approvals.principal import Principal, canonical_id
from afk.approvals.requests import (
    DECISION_OPTIONS,
    ApprovalDecision,
    Decision,
    Request,
    validate_decision,
)
from afk.errors import (
    DuplicateVoteError,
    InvalidDecisionError,
    InvalidPrincipalError,
    RequestExpiredError,
    UnauthorizedApproverError,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """One principal's answer to a request (``principal=None``: anonymous)."""

    principal: Principal | None
    decision: Decision
    at: float

    @property
    def approver(self) -> str | None:
        """The principal's canonical id, or None for an anonymous answer."""
        return self.principal.id if self.principal is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """The request is decided: ``decision`` (its ``approver`` is the deciding principal's id)."""

    decision: Decision
    vote: Vote
    votes: tuple[Vote, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteCounted:
    """The vote is recorded; the request needs ``needed`` more agreeing votes."""

    vote: Vote
    votes: tuple[Vote, ...]
    needed: int


def decide(
    request: Request, vote: Vote, *, votes: Sequence[Vote] = (), now: float
) -> Decided | VoteCounted:
    """Apply ``vote`` to ``request`` given the ``votes`` already counted.

    Refusals raise (and change nothing): RequestExpiredError past ``expires_at``;
    InvalidDecisionError for a decision that does not fit the request (type, edited arguments
    off-schema, a decision kind the rule does not allow); UnauthorizedApproverError for a
    principal who may not decide (not an approver, the requester, anonymous where a name is
    needed); DuplicateVoteError for a second vote by one principal.
    """
    if now > request.expires_at:
        raise RequestExpiredError(
            f"request {request.request_id} expired at {request.expires_at:.3f}",
            request_id=request.request_id,
        )
    validate_decision(request, vote.decision)
    _check_option(request, vote.decision)
    check_approver(request, vote.principal, now)
    decision = vote.decision
    if decision.approver != vote.approver:  # the principal decides, whatever the body says
        decision = replace(decision, approver=vote.approver)
        vote = replace(vote, decision=decision)
    quorum = getattr(request, "quorum", 1)
    if quorum > 1 and any(v.approver == vote.approver for v in votes):
        raise DuplicateVoteError(
            f"{vote.approver!r} already voted on request {request.request_id}; "
            f"it needs {quorum} distinct approvers",
            request_id=request.request_id,
        )
    counted = (*votes, vote)
    if quorum <= 1 or (decision.kind == "deny" and getattr(request, "deny_decides", True)):
        return Decided(decision=decision, vote=vote, votes=counted)
    edit = _edit(decision)
    agreeing = sum(
        1 for v in counted if v.decision.kind == decision.kind and _edit(v.decision) == edit
    )
    if agreeing >= quorum:
        return Decided(decision=decision, vote=vote, votes=counted)
    return VoteCounted(vote=vote, votes=counted, needed=quorum - agreeing)


def option_of(decision: Decision) -> str:
    """Which of the rule's ``allowed_decisions`` a decision uses."""
    if isinstance(decision, ApprovalDecision) and decision.kind == "allow":
        if decision.grant is not None:
            return "grant"
        if decision.updated_tool_args is not None:
            return "edit"
    return decision.kind


def _check_option(request: Request, decision: Decision) -> None:
    allowed = getattr(request, "allowed_decisions", DECISION_OPTIONS)
    option = option_of(decision)
    if option not in allowed:
        raise InvalidDecisionError(
            f"rule {request.rule_id!r} does not allow the decision {option!r} on request "
            f"{request.request_id} (allowed: {', '.join(allowed)})",
            request_id=request.request_id,
        )


def eligible(request: Request, now: float) -> tuple[str, ...] | None:
    """Who may decide now (canonical ids): None means anyone; escalation widens the set."""
    approvers = getattr(request, "approvers", ())
    if not approvers:
        return None
    people = list(approvers)
    escalate_at = getattr(request, "escalate_at", None)
    if escalate_at is not None and now >= escalate_at:
        people.extend(getattr(request, "escalate_to", ()))
    ids = (_canonical_or_none(p) for p in people)
    return tuple(dict.fromkeys(i for i in ids if i is not None))


def check_approver(request: Request, principal: Principal | None, now: float) -> None:
    """Refuse a principal who may not decide this request (any kind: an unauthorized deny too).

    Anonymous answers decide only requests with no approver rule: no approver list, no
    quorum, and no requester who must not approve their own run."""
    allowed = eligible(request, now)
    raw_requester = getattr(request, "requested_by", None)
    requester = _canonical_or_none(raw_requester)
    self_ok = getattr(request, "allow_self_approval", False)
    if raw_requester is not None and requester is None and not self_ok:
        raise UnauthorizedApproverError(  # fail closed: we cannot tell who the requester is
            f"request {request.request_id} has an unreadable requester; nobody may decide it",
            request_id=request.request_id,
        )
    needs_name = allowed is not None or getattr(request, "quorum", 1) > 1
    needs_name = needs_name or (requester is not None and not self_ok)
    if principal is None:
        if needs_name:
            raise UnauthorizedApproverError(
                f"request {request.request_id} needs a named approver (an authenticated "
                "principal); an anonymous answer decides only requests with no approver rule",
                request_id=request.request_id,
            )
        return
    who = principal.id
    if allowed is not None and who not in allowed:
        raise UnauthorizedApproverError(
            f"{who!r} is not an approver of request {request.request_id} "
            f"(approvers: {', '.join(allowed)})",
            request_id=request.request_id,
        )
    if requester is not None and who == requester and not self_ok:
        raise UnauthorizedApproverError(
            f"{who!r} requested run {request.run_id} and may not decide its own request",
            request_id=request.request_id,
        )


def _canonical_or_none(name: str | None) -> str | None:
    """Stored names from before canonical ids compare canonically; a malformed one matches
    nobody (fail closed)."""
    if name is None:
        return None
    try:
        return canonical_id(name)
    except InvalidPrincipalError:
        return None


def _edit(decision: Decision) -> Any:
    return decision.updated_tool_args if isinstance(decision, ApprovalDecision) else None


__all__ = [
    "Decided",
    "Vote",
    "VoteCounted",
    "check_approver",
    "decide",
    "eligible",
    "option_of",
]
