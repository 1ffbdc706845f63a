"""The run event stream: one class per event, each with a ``type`` literal.

Every event carries ``run_id``, ``seq`` (1-based, contiguous per run), ``ts`` (epoch seconds)
and ``step`` (``None`` on run-level events). Exactly one terminal event ends a run.
All events are JSON-serializable through :func:`event_to_dict` / :func:`event_from_dict`.

A store keeps them slimmer (:func:`stored_payload`, read back by :func:`stored_event`): the
events table's own columns (``run_id``, ``seq``, ``type``, ``ts``) and fields at their default
are left out of the payload, and ``approval_requested`` / ``user_input_requested`` name their
request by ``request_id``, since the request row holds it. The event objects a run emits keep
the whole request, so notify hooks and event streams see it without a join.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from afk.agents.rules import ShadowResult
from afk.approvals.requests import (
    ApprovalDecision,
    ApprovalRequest,
    DecidedBy,
    Request,
    UserInputDecision,
    UserInputRequest,
)
from afk.llms.messages import ToolCall, Usage

if TYPE_CHECKING:
    from afk.store.store import EventRow


@dataclass(frozen=True, slots=True, kw_only=True)
class _Event:
    run_id: str
    seq: int
    ts: float
    step: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(_Event):
    """A run began: its agent, model, thread and the user's message."""

    type: Literal["run_started"] = "run_started"
    agent_name: str
    model: str
    thread_id: str | None = None
    user_message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStarted(_Event):
    """Step ``step`` began: one model call, then the tool calls it asks for."""

    type: Literal["step_started"] = "step_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMCalled(_Event):
    """The run called its model with ``message_count`` messages."""

    type: Literal["llm_called"] = "llm_called"
    model: str
    message_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMCompleted(_Event):
    """The model answered: its text, the tool calls it asked for, and the usage."""

    type: Literal["llm_completed"] = "llm_completed"
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(_Event):
    """A piece of the model's text as it streams in."""

    type: Literal["text_delta"] = "text_delta"
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDecisionEvent(_Event):
    """The policy decided a tool or model call: the action, the deciding rule, every
    matching rule, and what shadow rules would have done."""

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
    """A call waits for a human's approval; ``request`` says what, who may decide and
    by when."""

    type: Literal["approval_requested"] = "approval_requested"
    request: ApprovalRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalResolved(_Event):
    """An approval request was decided: by a human, by the fallback at its deadline
    (``decided_by='timeout'``), or by an error."""

    type: Literal["approval_resolved"] = "approval_resolved"
    request_id: str
    decision: ApprovalDecision
    approver: str | None
    decided_by: DecidedBy


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputRequested(_Event):
    """A call waits for a human's answer to ``request.prompt``."""

    type: Literal["user_input_requested"] = "user_input_requested"
    request: UserInputRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputResolved(_Event):
    """A user-input request was answered or denied: by a human, by the fallback at
    its deadline, or by an error."""

    type: Literal["user_input_resolved"] = "user_input_resolved"
    request_id: str
    decision: UserInputDecision
    approver: str | None
    decided_by: DecidedBy


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalReminder(_Event):
    """A request is still pending at its reminder or escalation time (``kind``);
    ``approvers`` are those who may decide it now."""

    """A pending request reached its reminder time, or its escalation time (its approvers
    now include ``escalate_to``)."""

    type: Literal["approval_reminder"] = "approval_reminder"
    request_id: str
    kind: Literal["remind", "escalate"]
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRecorded(_Event):
    """A vote was counted on a request that needs a quorum; ``needed`` more must allow."""

    """A vote towards a request's quorum was counted; the request stays open."""

    type: Literal["vote_recorded"] = "vote_recorded"
    request_id: str
    approver: str | None
    authenticated_by: str | None
    needed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class VoteRefused(_Event):
    """An answer was refused (not an eligible approver, a duplicate vote, a bad
    decision); the request stays pending. ``why`` says why."""

    """An answer was refused (not an eligible approver, anonymous, expired, malformed...).
    It decides nothing: the request stays open until it is decided or expires."""

    type: Literal["vote_refused"] = "vote_refused"
    request_id: str
    approver: str | None
    authenticated_by: str | None
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantUsed(_Event):
    """A standing grant let a gated call run without asking anyone."""

    """A standing grant let a call run that its rule would otherwise have asked about."""

    type: Literal["grant_used"] = "grant_used"
    grant_id: str
    tool_name: str
    tool_call_id: str
    rule_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPaused(_Event):
    """The run waits for the requests ``request_ids`` (in external mode it stops here
    until a worker resumes it)."""

    type: Literal["run_paused"] = "run_paused"
    request_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResumed(_Event):
    """The paused run continues: the requests ``request_ids`` are decided."""

    type: Literal["run_resumed"] = "run_resumed"
    request_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolStarted(_Event):
    """A tool body began, with ``args``: the canonical arguments as approved."""

    type: Literal["tool_started"] = "tool_started"
    tool_name: str
    tool_call_id: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCompleted(_Event):
    """A tool call ended: it ran, failed, or was denied (``denied``), with its output
    or error as the model is told."""

    type: Literal["tool_completed"] = "tool_completed"
    tool_name: str
    tool_call_id: str
    success: bool
    denied: bool = False
    output: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWarning(_Event):
    """Something the run survived but a person should know (``source`` says where it
    came from, e.g. a notify hook that raised)."""

    type: Literal["warning"] = "warning"
    message: str
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCompleted(_Event):
    """The run ended: ``completed`` with the model's final answer, or ``stopped`` by a
    rule or a human's decision. ``expired_calls`` names the tool calls whose request expired
    undecided (the fallback decided them)."""

    type: Literal["run_completed"] = "run_completed"
    state: Literal["completed", "stopped"]
    final_text: str | None = None
    # Tool calls whose request expired undecided (the fallback decided them): a run that
    # "completed" without the refund nobody approved in time says so in its last event.
    expired_calls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailed(_Event):
    """The run ended on an error it could not go on from (``error_type``, ``error``)."""

    type: Literal["run_failed"] = "run_failed"
    error: str
    error_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancelled(_Event):
    """The run was cancelled and ended."""

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


_DUMPERS: dict[type, Any] = {}


def _dumper(kind: type) -> Any:
    # One event class's own adapter: what the union's serializer picks for it (by its
    # ``type``), built for the classes a process writes, not for all of them at once, which
    # a fresh process resuming one run would wait for (about 10 ms here).
    found = _DUMPERS.get(kind)
    if found is None:
        from pydantic import TypeAdapter

        found = _DUMPERS[kind] = TypeAdapter(kind)
    return found


def prepare() -> None:
    """Build every event class's adapter now rather than on first use: a worker does this
    as it starts, so that its first resume does not wait for them."""
    import typing

    for kind in typing.get_args(Event):
        _dumper(kind)


def event_to_dict(event: Event) -> dict[str, Any]:
    """``event`` as JSON data (dicts, lists, strings, numbers), ``type`` included."""
    result: dict[str, Any] = _dumper(type(event)).dump_python(event, mode="json")
    return result


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event ``data`` describes, picked by its ``type``; raises ``ValueError`` (pydantic's
    ValidationError) for data that is not one."""
    result: Event = _adapter().validate_python(data)
    return result


def event_to_json(event: Event) -> str:
    """``event`` as JSON text."""
    data: bytes = _dumper(type(event)).dump_json(event)
    return data.decode()


_COLUMNS = frozenset({"run_id", "seq", "type", "ts"})  # the events table's own columns
_ASKS = ("approval_requested", "user_input_requested")  # their request is its row


def stored_payload(event: Event) -> str:
    """The payload an events table row holds for ``event`` (see the module docstring)."""
    if isinstance(event, ApprovalRequested | UserInputRequested):
        slim: dict[str, Any] = {"request_id": event.request.request_id}
        if event.step is not None:
            slim["step"] = event.step
        return json.dumps(slim, separators=(",", ":"))
    data: bytes = _dumper(type(event)).dump_json(event, exclude=_COLUMNS, exclude_defaults=True)
    return data.decode()


def event_from_row(row: EventRow, requests: Mapping[str, Request]) -> Event:
    """The event a stored row holds: its columns and payload, with the request of an
    ``*_requested`` event joined from ``requests`` (by request id). Reads the whole payloads
    older afk versions wrote too. A payload it cannot read raises ``ValueError`` (pydantic's
    ValidationError is one)."""
    data = json.loads(row.payload)
    if not isinstance(data, dict):
        raise ValueError(f"event {row.seq} of run {row.run_id}: its payload is not an object")
    data.update(run_id=row.run_id, seq=row.seq, type=row.type, ts=row.ts)
    if row.type in _ASKS and "request" not in data:
        request_id = data.pop("request_id", None)
        request = requests.get(request_id) if isinstance(request_id, str) else None
        if request is None:
            raise ValueError(
                f"event {row.seq} of run {row.run_id} names request {request_id!r}, "
                "which the store does not hold"
            )
        data["request"] = request
    return event_from_dict(data)


__all__ = [
    "TERMINAL_TYPES",
    "ApprovalReminder",
    "ApprovalRequested",
    "ApprovalResolved",
    "Event",
    "GrantUsed",
    "LLMCalled",
    "LLMCompleted",
    "PolicyDecisionEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunPaused",
    "RunResumed",
    "RunStarted",
    "RunWarning",
    "StepStarted",
    "TextDelta",
    "ToolCompleted",
    "ToolStarted",
    "UserInputRequested",
    "UserInputResolved",
    "VoteRecorded",
    "VoteRefused",
    "event_from_dict",
    "event_from_row",
    "event_to_dict",
    "event_to_json",
    "stored_payload",
]
