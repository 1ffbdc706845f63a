"""Who may decide a request, how votes add up to a decision, and standing grants.

Pure rules on request data, so every place that records a decision (the in-memory provider,
``Runner.resolve`` in any process, the CLI) applies the same checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from afk.approvals.requests import ApprovalDecision, Decision, Request
from afk.errors import ConfigurationError, DuplicateVoteError, UnauthorizedApproverError

GROUP_PREFIX = "group:"


class ApproverDirectory(Protocol):
    """Resolves ``group:NAME`` entries of a rule's ``approvers`` to people."""

    def members(self, group: str) -> Iterable[str]: ...


class StaticDirectory:
    """The default directory: a mapping of group name to member names, from config."""

    def __init__(self, groups: Mapping[str, Iterable[str]] | None = None) -> None:
        self.groups: dict[str, tuple[str, ...]] = {}
        for name, members in (groups or {}).items():
            if isinstance(members, str) or not all(isinstance(m, str) for m in members):
                raise ConfigurationError(
                    f"StaticDirectory group {name!r} must be a list of member names"
                )
            self.groups[name] = tuple(members)

    def members(self, group: str) -> Iterable[str]:
        return self.groups.get(group, ())


def expand_approvers(
    approvers: Sequence[str], directory: ApproverDirectory | None
) -> tuple[str, ...]:
    """Names stay; ``group:NAME`` becomes its members. Unknown groups add nobody (fail closed)."""
    people: list[str] = []
    for entry in approvers:
        if entry.startswith(GROUP_PREFIX):
            if directory is not None:
                people.extend(directory.members(entry[len(GROUP_PREFIX) :]))
        else:
            people.append(entry)
    return tuple(dict.fromkeys(people))


def eligible(request: Request, now: float) -> tuple[str, ...] | None:
    """Who may decide now: None means anyone; escalation widens the set once due."""
    approvers = getattr(request, "approvers", ())
    if not approvers:
        return None
    escalate_at = getattr(request, "escalate_at", None)
    if escalate_at is not None and now >= escalate_at:
        return tuple(dict.fromkeys((*approvers, *request.escalate_to)))  # type: ignore[union-attr]
    return tuple(approvers)


def check_approver(request: Request, decision: Decision, now: float | None = None) -> None:
    """Refuse a decision its approver may not make (any kind: an unauthorized deny too)."""
    now = time.time() if now is None else now
    who = decision.approver
    allowed = eligible(request, now)
    requested_by = getattr(request, "requested_by", None)
    self_ok = getattr(request, "allow_self_approval", False)
    needs_name = allowed is not None or getattr(request, "quorum", 1) > 1
    needs_name = needs_name or (requested_by is not None and not self_ok)
    if needs_name and not who:
        raise UnauthorizedApproverError(
            f"request {request.request_id} needs a named approver (approver=...)",
            request_id=request.request_id,
        )
    if allowed is not None and who not in allowed:
        raise UnauthorizedApproverError(
            f"{who!r} is not an approver of request {request.request_id} "
            f"(approvers: {', '.join(allowed)})",
            request_id=request.request_id,
        )
    if requested_by is not None and who == requested_by and not self_ok:
        raise UnauthorizedApproverError(
            f"{who!r} requested run {request.run_id} and may not decide its own request",
            request_id=request.request_id,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    approver: str | None
    decision: Decision
    at: float


def tally(request: Request, votes: Sequence[Vote], new: Vote) -> Decision | None:
    """The request's decision once ``new`` is added to ``votes``, or None while the quorum
    is not reached. One deny decides unless the rule says ``deny_decides=False`` (then denies
    need the quorum too). Allow votes count only when they approve the same arguments; a
    repeated approver is refused."""
    quorum = getattr(request, "quorum", 1)
    if quorum > 1 and any(v.approver == new.approver for v in votes):
        raise DuplicateVoteError(
            f"{new.approver!r} already voted on request {request.request_id}; "
            f"it needs {quorum} distinct approvers",
            request_id=request.request_id,
        )
    kind = new.decision.kind
    if quorum <= 1 or (kind == "deny" and getattr(request, "deny_decides", True)):
        return new.decision
    edit = _edit(new.decision)
    agreeing = [v for v in votes if v.decision.kind == kind and _edit(v.decision) == edit]
    if len(agreeing) + 1 >= quorum:
        return new.decision
    return None


def _edit(decision: Decision) -> Any:
    return decision.updated_tool_args if isinstance(decision, ApprovalDecision) else None
