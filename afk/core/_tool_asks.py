"""A tool asking a human from inside its body: ``ToolContext.request_approval`` and
``request_input``.

Without a store the question is asked where the tool runs: the run's interaction provider
answers it (interactive mode), or the runner's fallback does (headless mode: deny unless an
operator chose allow), and the call goes on with the answer.

With a store the run must be able to wait in another process, so the question pauses the
call instead. The re-entry contract, which a tool that asks must be written for:

- the ask stops the tool where it stands (a ``BaseException``, so ``except Exception`` in the
  tool does not swallow it); the request is stored with the step's checkpoint; an external
  run returns ``paused`` (an interactive one waits in this process, as for a rule's request);
- once decided, the tool is **called again from the start**, with the same arguments and
  idempotency key; its asks, in the order it makes them, return the answers recorded so far
  at once, and the first ask past them asks anew. Code before the last ask therefore runs
  once per entry: put side effects after it (or make them idempotent with the key);
- each entry is its own execution record (``<key>#<answers so far>``): a process that dies
  inside an entry leaves it unknown and the call is not run again, as for any call;
- a tool that asks something else on re-entry (another kind of question, or another text
  at the same position) gets an InteractionError at that ask: answers are never handed to a
  question nobody saw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from afk.agents.policy import PolicyDecision
from afk.approvals.requests import (
    ApprovalRequest,
    DecidedBy,
    Decision,
    Request,
    ToolAnswer,
    UserInputDecision,
    UserInputRequest,
    input_value,
)
from afk.approvals.settings import DEFAULT as DEFAULT_APPROVAL
from afk.canonical import check_json, json_copy
from afk.errors import ConfigurationError, InteractionError, InvalidArgumentsError

# Builds the request for a question from the policy decision it is opened under.
MakeRequest = Callable[[PolicyDecision], Request]
AskInline = Callable[[Request], Awaitable[ToolAnswer]]
DECIDE_ONLY = ("allow", "deny")  # a tool's own question has no arguments to edit or grant


class ToolPaused(BaseException):
    """A tool of a durable run asked a human: the call stops here and the run checkpoints
    ``request``. Caught by the tool-call runner; never leaves afk."""

    def __init__(self, request: Request) -> None:
        self.request = request
        super().__init__(request.request_id)


class ChildPaused(ToolPaused):
    """A sub-agent call's child run paused (afk.core._subagents): the call stops here, the
    parent stores the child's ``snapshot`` (its stored form) with the step and its
    ``requests`` as its own, with the child's queued ledger entries (``log``)."""

    def __init__(self, *, snapshot: str, requests: Sequence[Request], log: Sequence[Any]) -> None:
        self.snapshot = snapshot
        self.requests = list(requests)
        self.log = list(log)
        super().__init__(self.requests[0])


class ToolAsks:
    """The questions of one entry into one tool call (``ToolContext`` delegates here)."""

    __slots__ = ("_answers", "_asked", "_count", "_inline", "_make", "_policy")

    def __init__(
        self,
        *,
        asked: Sequence[Request],
        answers: Sequence[ToolAnswer],
        make: MakeRequest,
        policy: PolicyDecision | None,
        inline: AskInline | None,
    ) -> None:
        self._asked, self._answers = list(asked), list(answers)
        self._make, self._policy, self._inline = make, policy, inline
        self._count = 0

    async def approval(self, reason: str, details: Mapping[str, Any] | None) -> ToolAnswer:
        """Ask for approval (see ``ToolContext.request_approval``)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError("request_approval() reason must be a non-empty string")
        shown = _json_field(details, "request_approval() details")
        settings = DEFAULT_APPROVAL
        if self._policy is not None and self._policy.action == "request_approval":
            settings = self._policy.approval  # the rule that gated the call: its approvers
        decision = PolicyDecision(
            action="request_approval",
            reason=reason,
            rule_id=self._rule_id,
            approval=dataclasses.replace(settings, allowed_decisions=DECIDE_ONLY),
        )

        def build() -> Request:
            request = self._make(decision)
            assert isinstance(request, ApprovalRequest)
            return dataclasses.replace(request, details=shown)

        return await self._ask("approval", reason, build)

    async def input(self, prompt: str, schema: Mapping[str, Any] | None) -> ToolAnswer:
        """Ask for input (see ``ToolContext.request_input``)."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise ConfigurationError("request_input() prompt must be a non-empty string")
        shape = _json_field(schema, "request_input() schema")
        if shape is not None:
            _check_schema(shape)
        decision = PolicyDecision(action="request_user_input", reason=prompt, rule_id=self._rule_id)

        def build() -> Request:
            request = self._make(decision)
            assert isinstance(request, UserInputRequest)
            return dataclasses.replace(request, input_schema=shape)

        return await self._ask("user_input", prompt, build)

    @property
    def _rule_id(self) -> str | None:
        return self._policy.rule_id if self._policy is not None else None

    async def _ask(self, kind: str, text: str, build: Callable[[], Request]) -> ToolAnswer:
        position = self._count
        self._count += 1
        if position < len(self._answers):
            before = self._asked[position]
            if before.kind != kind or before.reason != text:
                raise InteractionError(
                    f"the tool asked {kind} {text!r} at question {position + 1} on re-entry, "
                    f"where it asked {before.kind} {before.reason!r} before: a tool must ask "
                    "the same questions in the same order each time it is entered"
                )
            return self._answers[position]
        request = build()
        if self._inline is not None:
            return await self._inline(request)
        raise ToolPaused(request)


def answer_of(request: Request, decision: Decision, decided_by: DecidedBy) -> ToolAnswer:
    """What the asking tool is handed for ``decision`` on its ``request``."""
    approved = decision.kind == "allow" and decided_by in ("human", "timeout", "fallback")
    value = None
    if isinstance(decision, UserInputDecision) and isinstance(request, UserInputRequest):
        approved = approved and decision.value is not None
        if approved:
            value = input_value(request, decision.value)
    return ToolAnswer(
        request_id=request.request_id,
        approved=approved,
        value=value,
        approver=decision.approver if decided_by == "human" else None,
        reason=decision.reason,
        decided_by=decided_by,
    )


def _json_field(value: Mapping[str, Any] | None, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{what} must be a dict (JSON object) or None")
    try:
        check_json(dict(value), what)
    except InvalidArgumentsError as exc:
        raise ConfigurationError(str(exc)) from None
    copied: dict[str, Any] = json_copy(dict(value))
    return copied


def _check_schema(schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        message = f"request_input() schema is not a JSON schema: {exc.message}"
        raise ConfigurationError(message) from None


__all__: list[str] = []
