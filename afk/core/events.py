"""The run event stream: one class per event, each with a ``type`` literal.

Every event carries ``run_id``, ``seq`` (1-based, contiguous per run), ``ts`` (epoch seconds)
and ``step`` (``None`` on run-level events). Exactly one terminal event ends a run.
All events are JSON-serializable through :func:`event_to_dict` / :func:`event_from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from afk.agents.rules import ShadowResult
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    DecidedBy,
    UserInputDecision,
    UserInputRequest,
)
from afk.llms.messages import ToolCall, Usage


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    run_id: str
    seq: int
    ts: float
    step: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    agent_name: str
    model: str
    thread_id: str | None = None
    user_message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMCalled(_Event):
    type: Literal["llm_called"] = "llm_called"
    model: str
    message_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMCompleted(_Event):
    type: Literal["llm_completed"] = "llm_completed"
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(_Event):
    type: Literal["text_delta"] = "text_delta"
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecisionEvent(_Event):
    type: Literal["policy_decision"] = "policy_decision"
    event_type: str
    tool_name: str | None
    tool_call_id: str | None
    action: str
    rule_id: str | None
    matched_rules: tuple[str, ...]
    reason: str | None
    shadow: tuple[ShadowResult, ...] = ()  # what shadow rules would have decided


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequested(_Event):
    type: Literal["approval_requested"] = "approval_requested"
    request: ApprovalRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalResolved(_Event):
    type: Literal["approval_resolved"] = "approval_resolved"
    request_id: str
    decision: ApprovalDecision
    approver: str | None
    decided_by: DecidedBy


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputRequested(_Event):
    type: Literal["user_input_requested"] = "user_input_requested"
    request: UserInputRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputResolved(_Event):
    type: Literal["user_input_resolved"] = "user_input_resolved"
    request_id: str
    decision: UserInputDecision
    approver: str | None
    decided_by: DecidedBy


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalReminder(_Event):
    """A pending request reached its reminder time, or its escalation time (its approvers
    now include ``escalate_to``)."""

    type: Literal["approval_reminder"] = "approval_reminder"
    request_id: str
    kind: Literal["remind", "escalate"]
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRecorded(_Event):
    """A vote towards a request's quorum was counted; the request stays open."""

    type: Literal["vote_recorded"] = "vote_recorded"
    request_id: str
    approver: str | None
    authenticated_by: str | None
    needed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRefused(_Event):
    """An answer was refused (not an eligible approver, anonymous, expired, malformed...).
    It decides nothing: the request stays open until it is decided or expires."""

    type: Literal["vote_refused"] = "vote_refused"
    request_id: str
    approver: str | None
    authenticated_by: str | None
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantUsed(_Event):
    """A standing grant let a call run that its rule would otherwise have asked about."""

    type: Literal["grant_used"] = "grant_used"
    grant_id: str
    tool_name: str
    tool_call_id: str
    rule_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPaused(_Event):
    type: Literal["run_paused"] = "run_paused"
    request_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResumed(_Event):
    type: Literal["run_resumed"] = "run_resumed"
    request_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted(_Event):
    type: Literal["tool_started"] = "tool_started"
    tool_name: str
    tool_call_id: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCompleted(_Event):
    type: Literal["tool_completed"] = "tool_completed"
    tool_name: str
    tool_call_id: str
    success: bool
    denied: bool = False
    output: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWarning(_Event):
    type: Literal["warning"] = "warning"
    message: str
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCompleted(_Event):
    type: Literal["run_completed"] = "run_completed"
    state: Literal["completed", "stopped"]
    final_text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(_Event):
    type: Literal["run_failed"] = "run_failed"
    error: str
    error_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelled(_Event):
    type: Literal["run_cancelled"] = "run_cancelled"


Event = (
    RunStarted
    | StepStarted
    | LLMCalled
    | LLMCompleted
    | TextDelta
    | PolicyDecisionEvent
    | ApprovalRequested
    | ApprovalResolved
    | UserInputRequested
    | UserInputResolved
    | ApprovalReminder
    | VoteRecorded
    | VoteRefused
    | GrantUsed
    | RunPaused
    | RunResumed
    | ToolStarted
    | ToolCompleted
    | RunWarning
    | RunCompleted
    | RunFailed
    | RunCancelled
)
TERMINAL_TYPES = frozenset({"run_completed", "run_failed", "run_cancelled"})


@cache
def _adapter() -> Any:
    # Built on first use: pydantic stays out of `import afk.core`.
    from typing import Annotated

    from pydantic import Field, TypeAdapter

    return TypeAdapter(Annotated[Event, Field(discriminator="type")])


def event_to_dict(event: Event) -> dict[str, Any]:
    result: dict[str, Any] = _adapter().dump_python(event, mode="json")
    return result


def event_from_dict(data: dict[str, Any]) -> Event:
    result: Event = _adapter().validate_python(data)
    return result


def event_to_json(event: Event) -> str:
    data: bytes = _adapter().dump_json(event)
    return data.decode()
