"""One tool call as the run carries it through a step, and what is decided about it before
any policy or human sees it: its canonical arguments, and the note a reviewer leaves the model.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass
from typing import Any

from afk.agents.policy import PolicyDecision
from afk.approvals.requests import ApprovalDecision, DecidedBy, Decision, Request, ToolAnswer
from afk.canonical import check_json, normalize
from afk.core.result import ToolExecution
from afk.errors import InvalidArgumentsError
from afk.llms.messages import ToolCall, ToolMessage
from afk.tools.tool import Tool, ToolArgumentsInvalid


class Paused(Exception):
    """Control flow: the run was checkpointed and stops here until its requests are decided."""

    def __init__(self, requests: list[Request]) -> None:
        self.requests = requests
        super().__init__("paused")


UNKNOWN_OUTCOME = (
    "outcome unknown: the process stopped while this call was running, and the tool is not "
    "declared idempotent, so it was not run again"
)


def discard(asked: Any) -> None:
    """Close a provider coroutine that was created up front but will never be awaited."""
    if inspect.iscoroutine(asked) and inspect.getcoroutinestate(asked) == inspect.CORO_CREATED:
        asked.close()


@dataclass(slots=True)
class Call:
    call: ToolCall  # the model's own call, as replayed to the provider
    tool: Tool | None
    position: int = -1  # index in its step: with the step, the exactly-once key of the call
    args: dict[str, Any] | None = None  # canonical arguments, set by _normalize
    error: str | None = None  # why the arguments cannot be used at all
    canonical: bool = False  # args passed the tool's validation (no need to validate again)
    policy: PolicyDecision | None = None
    request: Request | None = None
    decision: Decision | None = None
    decided_by: DecidedBy | None = None
    execution: ToolExecution | None = None  # the call's one record, once settled
    task: asyncio.Task[None] | None = None
    asked: Any = None  # the provider's pending answer, when it was asked up front
    grant_id: str | None = None
    waiting: bool = False
    stopped_by_sibling: bool = False
    stop: bool = False
    # Questions the tool asked from inside its body (afk.core._tool_asks), in order, and the
    # answers so far.
    # Tuples, not lists: most calls have none, and an empty tuple is shared.
    questions: tuple[Request, ...] = ()
    answers: tuple[ToolAnswer, ...] = ()
    question_asked: Any = None  # the provider's pending answer to the last question
    # A sub-agent call (Agent.as_tool) whose child run paused: the child's stored snapshot
    # and the requests it waits on (afk.core._subagents).
    child: str | None = None
    child_waits: tuple[Request, ...] = ()
    entries: int = 0  # entries into the tool that ended in a pause: each is its own record
    new_requests: tuple[Request, ...] = ()  # for the next checkpoint

    @property
    def waits_on_question(self) -> bool:
        """The tool asked a question nobody has answered yet: it is entered again after."""
        return len(self.answers) < len(self.questions)

    @property
    def id(self) -> str:
        assert self.call.id is not None
        return self.call.id

    @property
    def arguments(self) -> dict[str, Any]:  # canonical once _normalize ran
        assert self.args is not None
        return self.args


def normalize_call(item: Call) -> None:
    """The call's canonical arguments, or the reason it has none (``item.error``).

    When the tool rejects the arguments they stay the model's own (strings in NFC): rules still
    see them, and validation names the problem later, unless a human fills the argument in.
    """
    call = item.call
    item.args = {}
    if call.error is not None:
        item.error = call.error
        return
    try:
        if not isinstance(call.arguments, dict):
            raise InvalidArgumentsError(f"not an object: {type(call.arguments).__name__}")
        if item.tool is not None:
            try:  # checks and normalizes too: one pass over the arguments
                item.args = item.tool.canonical_args(call.arguments)
                item.canonical = True
                return
            except ToolArgumentsInvalid:
                pass
        check_json(call.arguments)
        item.args = normalize(call.arguments)
    except InvalidArgumentsError as exc:
        item.error = str(exc)


DENIED = "denied: "  # how ToolExecution.error starts for a call policy or a human refused


def tool_message(execution: ToolExecution, request: Request | None) -> ToolMessage:
    """What the model is told about a settled call, derived from its one record (and the
    request it was asked under, for a reviewer's edit)."""
    error = execution.error
    if execution.denied and error is not None:
        content = f"Tool call {error}"  # "Tool call denied: <reason>"
    elif error is not None:
        content = f"Error: {error}"
    else:
        output = execution.output
        content = output if isinstance(output, str) else json.dumps(output)
    note = reviewer_note(execution, request)
    if note is not None:
        content = f"{note}\n{content}"
    return ToolMessage(
        tool_call_id=execution.tool_call_id,
        tool_name=execution.tool_name,
        content=content,
        is_error=not execution.success,
    )


def reviewer_note(execution: ToolExecution, request: Request | None) -> str | None:
    """What a human approver told the run, for the model: their reason, and the arguments
    they changed the call to (the model would otherwise believe its own arguments ran)."""
    decision = execution.decision
    if execution.decided_by != "human" or not isinstance(decision, ApprovalDecision):
        return None
    if decision.kind != "allow":
        return None  # a denial's reason is already the result
    reason = (decision.reason or "").strip()
    args = execution.args
    if decision.updated_tool_args is not None and request and args != request.tool_args:
        shown = json.dumps(args, sort_keys=True, ensure_ascii=False, default=repr)
        note = f"Note: a reviewer changed the arguments to {shown}"
        return f"{note}. Reason: {reason}" if reason else note
    return f"Approved by a reviewer: {reason}" if reason else None
