"""afk: LLM agents whose risky actions are gated by policy and approved by people.

The names of a first agent load on first use (PEP 562), so ``import afk`` (and with it every
``afk`` command) pays only for the error classes::

    from afk import Agent, PolicyEngine, PolicyRule, Runner, RunnerConfig
"""

from __future__ import annotations

from afk._lazy import lazy_exports
from afk.errors import AfkError

# typing itself is not imported: it is the largest part of `import afk`, and mypy reads any
# constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from afk.agents.agent import Agent
    from afk.agents.policy import PolicyEngine
    from afk.agents.rules import PolicyRule
    from afk.approvals.providers import InMemoryInteractiveProvider
    from afk.approvals.requests import ApprovalDecision
    from afk.core.config import RunnerConfig
    from afk.core.runner import Runner

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Agent": "afk.agents.agent",
    "ApprovalDecision": "afk.approvals.requests",
    "InMemoryInteractiveProvider": "afk.approvals.providers",
    "PolicyEngine": "afk.agents.policy",
    "PolicyRule": "afk.agents.rules",
    "Runner": "afk.core.runner",
    "RunnerConfig": "afk.core.config",
}

__all__ = [
    "AfkError",
    "Agent",
    "ApprovalDecision",
    "InMemoryInteractiveProvider",
    "PolicyEngine",
    "PolicyRule",
    "Runner",
    "RunnerConfig",
    "__version__",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
