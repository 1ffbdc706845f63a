"""Agents and the policy that gates what they do."""

from afk.agents._policy_explain import PolicyExplanation, RuleExplanation
from afk.agents.agent import Agent
from afk.agents.interaction import (
    ApprovalDecision,
    ApprovalRequest,
    UserInputDecision,
    UserInputRequest,
)
from afk.agents.policy import (
    PolicyDecision,
    PolicyEngine,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
)

__all__ = [
    "Agent",
    "ApprovalDecision",
    "ApprovalRequest",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEvent",
    "PolicyExplanation",
    "PolicyRule",
    "RuleExplanation",
    "ShadowResult",
    "UserInputDecision",
    "UserInputRequest",
]
