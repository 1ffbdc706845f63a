"""Agents and the policy that gates what they do.

The names load on first use (PEP 562): a grant's argument predicates are checked with
``afk.agents._matchers``, and importing that from the command line should not load every
agent, tool and model class.
"""

from __future__ import annotations

from afk._lazy import lazy_exports

# Not `from typing import ...`; mypy reads any constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from afk.llms.settings import ModelSettings

_LAZY: dict[str, str] = {
    "PolicyExplanation": "afk.agents._policy_explain",
    "RuleExplanation": "afk.agents._policy_explain",
    "Agent": "afk.agents.agent",
    "PolicyDecision": "afk.agents.policy",
    "PolicyEngine": "afk.agents.policy",
    "PolicyEvent": "afk.agents.policy",
    "PolicyRule": "afk.agents.policy",
    "ShadowResult": "afk.agents.policy",
    "ApproverDirectory": "afk.approvals.approvers",
    "StaticDirectory": "afk.approvals.approvers",
    "ApprovalDecision": "afk.approvals.requests",
    "ApprovalRequest": "afk.approvals.requests",
    "GrantSpec": "afk.approvals.requests",
    "UserInputDecision": "afk.approvals.requests",
    "UserInputRequest": "afk.approvals.requests",
    "ModelSettings": "afk.llms.settings",
}

__all__ = [
    "Agent",
    "ApprovalDecision",
    "ApprovalRequest",
    "ApproverDirectory",
    "GrantSpec",
    "ModelSettings",
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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
