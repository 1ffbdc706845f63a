"""Human-in-the-loop, in one place: requests and decisions, who may decide (approver
directories and principals), how votes add up, standing grants, and the providers that
bring a human's answer back to a run."""

from afk.approvals.approvers import ApproverDirectory, StaticDirectory
from afk.approvals.decide import Decided, Vote, VoteCounted, decide
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
