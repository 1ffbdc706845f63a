"""The runtime: the runner, its configuration, interaction providers and run events.

Exports load on first use: the command line imports submodules of this package (the durable
decision path) and should not pay for the runner, the events and pydantic it never uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from afk._lazy import lazy_exports

if TYPE_CHECKING:
    from afk.approvals.providers import (
        HeadlessInteractionProvider,
        InMemoryInteractiveProvider,
        InteractionProvider,
    )
    from afk.approvals.requests import (
        ApprovalDecision,
        ApprovalRequest,
        UserInputDecision,
        UserInputRequest,
    )
    from afk.core.config import RunnerConfig
    from afk.core.events import (
        ApprovalReminder,
        ApprovalRequested,
        ApprovalResolved,
        Event,
        GrantUsed,
        LLMCalled,
        LLMCompleted,
        PolicyDecisionEvent,
        RunCancelled,
        RunCompleted,
        RunFailed,
        RunPaused,
        RunResumed,
        RunStarted,
        RunWarning,
        StepStarted,
        TextDelta,
        ToolCompleted,
        ToolStarted,
        UserInputRequested,
        UserInputResolved,
        VoteRecorded,
        VoteRefused,
        event_from_dict,
        event_to_dict,
    )
    from afk.core.result import RunInfo, RunResult, ToolExecution
    from afk.core.runner import RunHandle, Runner
    from afk.core.sessions import InMemorySession, Session, StoreSession

_EXPORTS: dict[str, str] = {
    "HeadlessInteractionProvider": "afk.approvals.providers",
    "InMemoryInteractiveProvider": "afk.approvals.providers",
    "InteractionProvider": "afk.approvals.providers",
    "ApprovalDecision": "afk.approvals.requests",
    "ApprovalRequest": "afk.approvals.requests",
    "UserInputDecision": "afk.approvals.requests",
    "UserInputRequest": "afk.approvals.requests",
    "RunnerConfig": "afk.core.config",
    "ApprovalReminder": "afk.core.events",
    "ApprovalRequested": "afk.core.events",
    "ApprovalResolved": "afk.core.events",
    "Event": "afk.core.events",
    "GrantUsed": "afk.core.events",
    "LLMCalled": "afk.core.events",
    "LLMCompleted": "afk.core.events",
    "PolicyDecisionEvent": "afk.core.events",
    "RunCancelled": "afk.core.events",
    "RunCompleted": "afk.core.events",
    "RunFailed": "afk.core.events",
    "RunPaused": "afk.core.events",
    "RunResumed": "afk.core.events",
    "RunStarted": "afk.core.events",
    "RunWarning": "afk.core.events",
    "StepStarted": "afk.core.events",
    "TextDelta": "afk.core.events",
    "ToolCompleted": "afk.core.events",
    "ToolStarted": "afk.core.events",
    "UserInputRequested": "afk.core.events",
    "UserInputResolved": "afk.core.events",
    "VoteRecorded": "afk.core.events",
    "VoteRefused": "afk.core.events",
    "event_from_dict": "afk.core.events",
    "event_to_dict": "afk.core.events",
    "RunInfo": "afk.core.result",
    "RunResult": "afk.core.result",
    "ToolExecution": "afk.core.result",
    "RunHandle": "afk.core.runner",
    "Runner": "afk.core.runner",
    "InMemorySession": "afk.core.sessions",
    "Session": "afk.core.sessions",
    "StoreSession": "afk.core.sessions",
}

__all__ = [
    "ApprovalDecision",
    "ApprovalReminder",
    "ApprovalRequest",
    "ApprovalRequested",
    "ApprovalResolved",
    "Event",
    "GrantUsed",
    "HeadlessInteractionProvider",
    "InMemoryInteractiveProvider",
    "InMemorySession",
    "InteractionProvider",
    "LLMCalled",
    "LLMCompleted",
    "PolicyDecisionEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunHandle",
    "RunInfo",
    "RunPaused",
    "RunResult",
    "RunResumed",
    "RunStarted",
    "RunWarning",
    "Runner",
    "RunnerConfig",
    "Session",
    "StepStarted",
    "StoreSession",
    "TextDelta",
    "ToolCompleted",
    "ToolExecution",
    "ToolStarted",
    "UserInputDecision",
    "UserInputRequest",
    "UserInputRequested",
    "UserInputResolved",
    "VoteRecorded",
    "VoteRefused",
    "event_from_dict",
    "event_to_dict",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
