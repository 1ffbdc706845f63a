"""Agents and the policy that gates what they do."""

from afk.agents._policy_explain import PolicyExplanation, RuleExplanation
from afk.agents.agent import Agent
from afk.agents.policy import (
    PolicyDecision,
    PolicyEngine,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
)
from afk.approvals.approvers import ApproverDirectory, StaticDirectory
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    GrantSpec,
    UserInputDecision,
    UserInputRequest,
)

__all__ = [
    "Agent",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApproverDirectory",
    "GrantSpec",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEvent",
    "PolicyExplanation",
    "PolicyRule",
    "RuleExplanation",
    "ShadowResult",
    "StaticDirectory",
    "UserInputDecision",
    "UserInputRequest",
]
