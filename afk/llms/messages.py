"""The conversation a model sees: one small class per role, all JSON-serializable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call requested by the model. ``id`` is filled in by the runner when missing.

    Positional on purpose: ``ToolCall("drop_table", {"name": "old_logs"})`` reads best in scripts.
    ``error`` is set by an adapter when the model's arguments text could not be read strictly
    (not JSON, NaN, a repeated key, ...); the arguments are then empty and the run answers the
    call with that error instead of running or asking about it.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    error: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemMessage:
    """The agent's instructions, first in the conversation."""

    content: str
    role: Literal["system"] = "system"


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage:
    """What the user asked."""

    content: str
    role: Literal["user"] = "user"


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantMessage:
    """The model's turn: text, tool calls, or both. Kept whole so providers can replay it."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    role: Literal["assistant"] = "assistant"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolMessage:
    """The result of one tool call, tied to the call by ``tool_call_id``."""

    tool_call_id: str
    tool_name: str
    content: str
    is_error: bool = False
    role: Literal["tool"] = "tool"


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """What a model is told about a tool: its name, description and JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens a model call used and, when the price is known, what it cost. Usages add up with ``+``
    (the cost stays None only when both are unknown)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=cost,
        )


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """One model turn: text and/or tool calls, plus token usage when the provider reports it."""

    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None


__all__ = [
    "AssistantMessage",
    "Message",
    "ModelResponse",
    "SystemMessage",
    "ToolCall",
    "ToolMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
]
