"""What a run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from afk.agents.policy import PolicyDecision
from afk.approvals.requests import DecidedBy, Decision, Request
from afk.llms.messages import Message, Usage

if TYPE_CHECKING:  # only annotates RunResult.events; loading every event type costs startup
    from afk.core.events import Event

RunState = Literal["completed", "stopped", "failed", "cancelled", "paused"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolExecution:
    """One tool call the model asked for, in the model's call order.

    ``args`` are the canonical arguments as executed (after any human edit): validated, with
    defaults filled in, as JSON. ``executed`` says whether the tool body ran; ``denied``
    whether policy or a human refused it.
    """

    tool_name: str
    tool_call_id: str
    args: dict[str, Any]
    success: bool
    output: Any = None
    error: str | None = None
    denied: bool = False
    executed: bool = False
    policy: PolicyDecision | None = None
    decision: Decision | None = None
    decided_by: DecidedBy | None = None
    grant_id: str | None = None  # set when a standing grant let the call run unasked

    @property
    def expired(self) -> bool:
        """Whether the call's request expired before anyone decided, so the fallback
        (``RunnerConfig.approval_fallback``) decided it. The one definition of "expired"."""
        return self.decided_by == "timeout"


@dataclass(slots=True, kw_only=True)
class RunResult:
    """How a run ended or where it paused.

    ``state`` is ``paused`` while requests in ``pending_requests`` wait for a decision.
    ``tool_executions`` lists every tool call of this stretch of the run, in call order;
    ``expired_calls`` the ones whose request expired undecided (the fallback decided them):
    a run can be ``completed`` with a refund that nobody approved in time. ``output`` is the
    final answer validated as the agent's ``output_type`` (None without one, or unless the run
    completed).
    """

    run_id: str
    state: RunState
    final_text: str | None = None
    tool_executions: list[ToolExecution] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    error: str | None = None
    usage: Usage | None = None
    pending_requests: list[Request] = field(default_factory=list)
    output: Any = None

    @property
    def expired_calls(self) -> list[ToolExecution]:
        """Calls whose approval request expired before anyone decided: the fallback
        (``RunnerConfig.approval_fallback``, deny unless an operator chose allow) decided."""
        return [t for t in self.tool_executions if t.expired]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """A stored run as ``Runner.get_run`` reads it: where it stands, and (when paused) the
    requests it waits on."""

    run_id: str
    agent_name: str
    state: str  # running, paused, completed, stopped, failed, cancelled
    created_at: float
    updated_at: float
    thread_id: str | None = None
    requested_by: str | None = None
    pending_requests: list[Request] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON data (its pending requests as ``Request.to_dict`` gives them)."""
        return {
            "run_id": self.run_id,
            "agent_name": self.agent_name,
            "state": self.state,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "thread_id": self.thread_id,
            "requested_by": self.requested_by,
            "pending_requests": [r.to_dict() for r in self.pending_requests],
        }


__all__ = [
    "RunInfo",
    "RunResult",
    "RunState",
    "ToolExecution",
]
