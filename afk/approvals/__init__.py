"""Human-in-the-loop, in one place: requests and decisions, who may decide (approver
directories and principals), how votes add up, standing grants, and the providers that
bring a human's answer back to a run.

The names load on first use (PEP 562): deciding a request from the command line imports
this package for its requests and decision rule, not for the providers (and asyncio).
"""

from __future__ import annotations

from afk._lazy import lazy_exports

# Eager, unlike the rest: ``decide`` is also the name of a submodule, and importing that
# submodule first would bind the package's ``decide`` to the module, not the function.
from afk.approvals.decide import Decided, Vote, VoteCounted, decide

# Not `from typing import ...`; mypy reads any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from afk.approvals.approvers import ApproverDirectory, StaticDirectory
    from afk.approvals.principal import Principal, canonical_id
    from afk.approvals.providers import (
        HeadlessInteractionProvider,
        InMemoryInteractiveProvider,
        InteractionProvider,
    )
    from afk.approvals.requests import (
        ApprovalDecision,
        ApprovalRequest,
        GrantSpec,
        UserInputDecision,
        UserInputRequest,
    )

_LAZY: dict[str, str] = {
    "ApproverDirectory": "afk.approvals.approvers",
    "StaticDirectory": "afk.approvals.approvers",
    "Principal": "afk.approvals.principal",
    "canonical_id": "afk.approvals.principal",
    "HeadlessInteractionProvider": "afk.approvals.providers",
    "InMemoryInteractiveProvider": "afk.approvals.providers",
    "InteractionProvider": "afk.approvals.providers",
    "ApprovalDecision": "afk.approvals.requests",
    "ApprovalRequest": "afk.approvals.requests",
    "GrantSpec": "afk.approvals.requests",
    "UserInputDecision": "afk.approvals.requests",
    "UserInputRequest": "afk.approvals.requests",
}

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "ApproverDirectory",
    "Decided",
    "GrantSpec",
    "HeadlessInteractionProvider",
    "InMemoryInteractiveProvider",
    "InteractionProvider",
    "Principal",
    "StaticDirectory",
    "UserInputDecision",
    "UserInputRequest",
    "Vote",
    "VoteCounted",
    "canonical_id",
    "decide",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
