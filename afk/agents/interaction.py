"""What the runner asks a human, and what the human answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from afk.errors import InvalidDecisionError

DecisionKind = Literal["allow", "deny"]
DecidedBy = Literal["human", "timeout", "fallback", "error"]
_KINDS = ("allow", "deny")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRequest:
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
    kind: Literal["approval"] = "approval"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInputRequest:
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
    kind: Literal["user_input"] = "user_input"


Request = ApprovalRequest | UserInputRequest


def _check_common(kind: object, stop_run: bool, what: str) -> None:
    if kind not in _KINDS:
        raise InvalidDecisionError(f"{what}.kind must be one of {_KINDS}, got {kind!r}")
    if stop_run and kind != "deny":
        raise InvalidDecisionError(f"{what}.stop_run=True goes only with kind='deny'")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalDecision:
    """A human's answer to an :class:`ApprovalRequest`.

    ``updated_tool_args`` means "approve, but with these arguments instead": they are validated
    against the tool's schema when the decision is recorded and are exactly what executes.
    """

    kind: DecisionKind
    reason: str | None = None
    approver: str | None = None
    updated_tool_args: dict[str, Any] | None = None
    stop_run: bool = False

    def __post_init__(self) -> None:
        _check_common(self.kind, self.stop_run, "ApprovalDecision")
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
class UserInputDecision:
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
    if isinstance(decision, ApprovalDecision) and decision.updated_tool_args is not None:
        schema = request.tool_schema
        if schema is None:
            return
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(dict(decision.updated_tool_args)), key=str)
        if errors:
            parts = []
            for err in errors:
                where = ".".join(str(p) for p in err.absolute_path) or "(arguments)"
                parts.append(f"{where}: {err.message}")
            raise InvalidDecisionError(
                f"updated_tool_args for tool {request.tool_name!r} rejected: " + "; ".join(parts),
                request_id=request.request_id,
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedDecision:
    """A decision together with who or what produced it."""

    decision: Decision
    decided_by: DecidedBy = "human"
    decided_at: float = field(default=0.0)
