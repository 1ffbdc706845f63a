"""afk: LLM agents whose risky actions are gated by policy and approved by people.

The names of a first agent load on first use (PEP 562), so ``import afk`` (and with it every
``afk`` command) pays only for the error classes::

    from afk import Agent, PolicyEngine, PolicyRule, Runner, RunnerConfig
"""

from __future__ import annotations

import importlib

from afk.errors import AfkError

# typing itself is not imported: it is the largest part of `import afk`, and mypy reads any
# constant named TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'afk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
