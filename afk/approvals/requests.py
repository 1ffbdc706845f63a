"""What the runner asks a human, and what the human answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from afk._lazy import lazy_exports
from afk.errors import InvalidDecisionError

if TYPE_CHECKING:
    from afk.approvals._answers import CallApproval, ResolvedDecision, ToolAnswer

DecisionKind = Literal["allow", "deny"]
# What the runner answers when no human does (headless mode, timeouts): an operator's choice.
Fallback = Literal["allow", "deny"]
FALLBACKS: tuple[str, ...] = ("allow", "deny")
DecidedBy = Literal["human", "timeout", "fallback", "error"]
_KINDS = ("allow", "deny")
DECISION_OPTIONS: tuple[str, ...] = ("allow", "deny", "edit", "grant")


class _Json:
    """``to_json`` / ``to_dict`` / ``from_json``: the stored form of afk's request and
    decision records (afk.approvals._codec), for web views and queues."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This record as JSON data, every field included."""
        from afk.approvals import _codec

        encoded: dict[str, Any] = _codec.encode(self)
        return encoded

    def to_json(self) -> str:
        """This record as JSON text (what :meth:`from_json` reads)."""
        from afk.approvals import _codec

        text: str = _codec.dumps(self)
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> Any:
        """The record ``text`` holds; StoreError naming the field when it does not fit."""
        from afk.approvals import _codec

        return _codec.loads(text, cls)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest(_Json):
    """One gated tool call (or model call, when ``tool_name`` is None) waiting for a human.

    ``tool_args`` are exactly the arguments that will execute if approved. ``tool_schema`` is
    the tool's JSON schema, kept so an edited decision can be validated by any process.
    """

    request_id: str
    run_id: str
    step: int
    agent_name: str
    tool_name: str | None
    tool_args: dict[str, Any]
    tool_call_id: str | None
    rule_id: str | None
    reason: str | None
    created_at: float
    expires_at: float
    thread_id: str | None = None
    tool_schema: dict[str, Any] | None = None
    # Who may decide (names, groups already expanded), how many must agree, and escalation.
    approvers: tuple[str, ...] = ()
    quorum: int = 1
    allow_self_approval: bool = False
    requested_by: str | None = None
    remind_at: float | None = None
    escalate_at: float | None = None
    escalate_to: tuple[str, ...] = ()
    deny_decides: bool = True
    # What a reviewer may do: allow, deny, edit (allow with changed arguments), grant.
    allowed_decisions: tuple[str, ...] = DECISION_OPTIONS
    # What a tool asking from inside its body (ToolContext.request_approval) shows besides.
    details: dict[str, Any] | None = None
    # Where in a tree of agents the asking run sits: one "<tool_call_id>:<agent>" per
    # sub-agent call from the top run (``run_id``) down; empty for the top run itself.
    path: tuple[str, ...] = ()
    kind: Literal["approval"] = "approval"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputRequest(_Json):
    """A request for free text from a human. ``prompt`` is the rule's reason."""

    request_id: str
    run_id: str
    step: int
    agent_name: str
    tool_name: str | None
    tool_args: dict[str, Any]
    tool_call_id: str | None
    rule_id: str | None
    reason: str | None
    created_at: float
    expires_at: float
    prompt: str
    input_target_arg: str | None = None
    thread_id: str | None = None
    tool_schema: dict[str, Any] | None = None
    requested_by: str | None = None
    # A JSON schema the answer must fit (ToolContext.request_input(schema=...)): checked
    # when the answer is submitted, so one that does not fit leaves the request pending.
    input_schema: dict[str, Any] | None = None
    path: tuple[str, ...] = ()  # as ApprovalRequest.path
    kind: Literal["user_input"] = "user_input"


Request = ApprovalRequest | UserInputRequest


def _check_common(kind: object, stop_run: bool, what: str) -> None:
    if kind not in _KINDS:
        raise InvalidDecisionError(f"{what}.kind must be one of {_KINDS}, got {kind!r}")
    if stop_run and kind != "deny":
        raise InvalidDecisionError(f"{what}.stop_run=True goes only with kind='deny'")


GrantScope = Literal["thread", "agent", "user"]
GRANT_SCOPES: tuple[str, ...] = ("thread", "agent", "user")


@dataclass(frozen=True, slots=True, kw_only=True)
class GrantSpec:
    """Part of a decision: "keep allowing (or denying) this tool, for calls whose arguments
    match ``when``, within this thread / agent / user, until ``until`` (epoch seconds)"."""

    scope: GrantScope
    until: float
    when: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.scope not in GRANT_SCOPES:
            raise InvalidDecisionError(
                f"GrantSpec.scope must be one of {GRANT_SCOPES}, got {self.scope!r}"
            )
        if not isinstance(self.until, int | float) or isinstance(self.until, bool):
            raise InvalidDecisionError("GrantSpec.until must be epoch seconds (a number)")
        from afk.agents._matchers import SpecError, compile_predicates

        try:
            compile_predicates(self.when, "when")  # validated now, not at first use
        except SpecError as exc:
            raise InvalidDecisionError(f"GrantSpec.when: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalDecision(_Json):
    """A human's answer to an :class:`ApprovalRequest`.

    ``updated_tool_args`` means "approve, but with these arguments instead": they are validated
    against the tool's schema when the decision is recorded and are exactly what executes.
    ``grant`` makes the answer standing: with ``allow``, later calls it covers run unasked;
    with ``deny``, they are refused unasked, with ``reason`` as the model's message.
    """

    kind: DecisionKind
    reason: str | None = None
    approver: str | None = None
    updated_tool_args: dict[str, Any] | None = None
    stop_run: bool = False
    grant: GrantSpec | None = None

    def __post_init__(self) -> None:
        _check_common(self.kind, self.stop_run, "ApprovalDecision")
        if self.grant is not None and not isinstance(self.grant, GrantSpec):
            raise InvalidDecisionError("ApprovalDecision.grant takes a GrantSpec")
        if self.grant is not None and self.stop_run:
            raise InvalidDecisionError(
                "ApprovalDecision.grant does not go with stop_run: a standing deny refuses "
                "later calls, it does not stop their runs"
            )
        if self.updated_tool_args is not None:
            if self.kind != "allow":
                raise InvalidDecisionError(
                    "ApprovalDecision.updated_tool_args goes only with kind='allow'"
                )
            if not isinstance(self.updated_tool_args, Mapping):
                raise InvalidDecisionError(
                    "ApprovalDecision.updated_tool_args must be a dict of argument name to value"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputDecision(_Json):
    """A human's answer to a :class:`UserInputRequest`; ``allow`` needs a ``value``."""

    kind: DecisionKind
    value: str | None = None
    reason: str | None = None
    approver: str | None = None
    stop_run: bool = False

    def __post_init__(self) -> None:
        _check_common(self.kind, self.stop_run, "UserInputDecision")
        if self.kind == "allow" and self.value is None:
            raise InvalidDecisionError("UserInputDecision(kind='allow') needs a value")


Decision = ApprovalDecision | UserInputDecision


def validate_decision(request: Request, decision: Decision) -> None:
    """Refuse a decision that does not fit its request (wrong type, edited args off-schema)."""
    if isinstance(request, ApprovalRequest) and not isinstance(decision, ApprovalDecision):
        raise InvalidDecisionError(
            f"request {request.request_id} is an approval request: answer with ApprovalDecision",
            request_id=request.request_id,
        )
    if isinstance(request, UserInputRequest) and not isinstance(decision, UserInputDecision):
        raise InvalidDecisionError(
            f"request {request.request_id} asks for input: answer with UserInputDecision",
            request_id=request.request_id,
        )
    if isinstance(decision, ApprovalDecision) and decision.grant is not None:
        scope = decision.grant.scope
        value = {"thread": request.thread_id, "agent": request.agent_name}.get(
            scope, getattr(request, "requested_by", None)
        )
        if request.tool_name is None or value is None:
            raise InvalidDecisionError(
                f"a {scope!r} grant needs a tool call in a run with a {scope} "
                f"({'thread_id' if scope == 'thread' else 'requested_by'} is not set)",
                request_id=request.request_id,
            )
    if isinstance(decision, ApprovalDecision) and decision.updated_tool_args is not None:
        _check_strict(request, decision.updated_tool_args)
        schema = request.tool_schema
        if schema is None:
            return
        problems = _misfits(schema, dict(decision.updated_tool_args), "(arguments)")
        if problems:
            raise InvalidDecisionError(
                f"updated_tool_args for tool {request.tool_name!r} rejected: {problems}",
                request_id=request.request_id,
            )
    if (
        isinstance(request, UserInputRequest)
        and isinstance(decision, UserInputDecision)
        and request.input_schema is not None
        and decision.kind == "allow"
    ):
        input_value(request, decision.value)


def input_value(request: UserInputRequest, value: str | None) -> Any:
    """The answer ``value`` as the asking tool receives it: the text itself when the
    request's ``input_schema`` is a string schema (or there is none), else the JSON it
    holds; raises InvalidDecisionError when it does not fit the schema."""
    schema = request.input_schema
    if schema is None or value is None or schema.get("type") == "string":
        found: Any = value
    else:
        from afk.canonical import strict_loads
        from afk.errors import InvalidArgumentsError

        try:  # strict: NaN, Infinity and repeated keys are refused, as in edited arguments
            found = strict_loads(value, what="the answer")
        except InvalidArgumentsError as exc:
            raise InvalidDecisionError(
                f"request {request.request_id} wants JSON matching its input_schema; {exc}",
                request_id=request.request_id,
            ) from None
    problems = _misfits(schema, found, "(answer)") if schema is not None else ""
    if problems:
        raise InvalidDecisionError(
            f"the answer to request {request.request_id} does not fit its input_schema: {problems}",
            request_id=request.request_id,
        )
    return found


def _misfits(schema: Mapping[str, Any], instance: Any, top: str) -> str:
    """What of ``instance`` ``schema`` rejects, by path ("" when it fits)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=str)
    return "; ".join(
        f"{'.'.join(str(p) for p in err.absolute_path) or top}: {err.message}" for err in errors
    )


def _check_strict(request: Request, args: Mapping[str, Any]) -> None:
    """Edited arguments are JSON that canonical form can hold: no NaN, no Infinity."""
    from afk.canonical import check_json
    from afk.errors import InvalidArgumentsError

    try:
        check_json(dict(args))
    except InvalidArgumentsError as exc:
        raise InvalidDecisionError(
            f"updated_tool_args rejected: {exc}", request_id=request.request_id
        ) from None


# What a tool sees of its call's approval and of the questions it asks, built on first use:
# an approver's decision never uses them (afk.approvals._answers).
__getattr__, __dir__ = lazy_exports(
    __name__,
    dict.fromkeys(("CallApproval", "ResolvedDecision", "ToolAnswer"), "afk.approvals._answers"),
    globals(),
)

__all__ = [
    "DECISION_OPTIONS",
    "FALLBACKS",
    "GRANT_SCOPES",
    "ApprovalDecision",
    "ApprovalRequest",
    "CallApproval",
    "DecidedBy",
    "Decision",
    "DecisionKind",
    "Fallback",
    "GrantScope",
    "GrantSpec",
    "Request",
    "ResolvedDecision",
    "ToolAnswer",
    "UserInputDecision",
    "UserInputRequest",
    "input_value",
    "validate_decision",
]
