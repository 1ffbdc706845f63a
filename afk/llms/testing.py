"""Models for tests and demos: no network, fully deterministic."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeAlias

from afk.errors import ConfigurationError, ModelError
from afk.llms.messages import AssistantMessage, Message, ModelResponse, ToolCall, ToolSpec
from afk.llms.settings import ModelSettings, OutputSpec

Turn: TypeAlias = "str | ToolCall | list[ToolCall] | ModelResponse"
FunctionResult: TypeAlias = "str | ToolCall | list[ToolCall] | ModelResponse"


def _as_response(value: object, *, where: str) -> ModelResponse:
    if isinstance(value, ModelResponse):
        return value
    if isinstance(value, str):
        return ModelResponse(text=value)
    if isinstance(value, ToolCall):
        return ModelResponse(tool_calls=[value])
    if isinstance(value, list) and all(isinstance(c, ToolCall) for c in value):
        return ModelResponse(tool_calls=list(value))
    raise ConfigurationError(
        f"{where}: expected a str, ToolCall, list of ToolCall or ModelResponse, "
        f"got {type(value).__name__}"
    )


class ScriptedModel:
    """Plays back a fixed list of turns.

    The turn is chosen by counting the assistant turns already in the conversation, so the
    model keeps no hidden state and stays right when a run resumes in another process.
    ``settings`` and ``outputs`` record what each call was given, for tests to assert.
    """

    def __init__(self, turns: Sequence[Turn], *, name: str = "scripted") -> None:
        self.model_name = name
        self._turns = [
            _as_response(t, where=f"ScriptedModel turn {i}") for i, t in enumerate(turns)
        ]
        self.settings: list[ModelSettings | None] = []
        self.outputs: list[OutputSpec | None] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> ModelResponse:
        """The next scripted turn (counted by the assistant messages so far, so a resumed run gets
        the right one); raises ModelError past the last turn."""
        self.settings.append(settings)
        self.outputs.append(output)
        index = sum(1 for m in messages if isinstance(m, AssistantMessage))
        if index >= len(self._turns):
            raise ModelError(
                f"ScriptedModel {self.model_name!r} has {len(self._turns)} turns and was asked "
                f"for turn {index + 1}"
            )
        return self._turns[index]


class FunctionModel:
    """Calls ``fn(messages, tools)`` (sync or async) for every turn; ``settings`` and
    ``outputs`` record what each call was given."""

    def __init__(
        self,
        fn: Callable[[list[Message], list[ToolSpec]], FunctionResult | Awaitable[FunctionResult]],
        *,
        name: str = "function",
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"FunctionModel fn must be callable, got {type(fn).__name__}")
        self.model_name = name
        self._fn = fn
        self.settings: list[ModelSettings | None] = []
        self.outputs: list[OutputSpec | None] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> ModelResponse:
        """Whatever the function returns (awaited when it is a coroutine) for the messages and
        tools, as a response."""
        self.settings.append(settings)
        self.outputs.append(output)
        value = self._fn(list(messages), list(tools))
        if inspect.isawaitable(value):
            value = await value
        return _as_response(value, where=f"FunctionModel {self.model_name!r}")


__all__ = [
    "FunctionModel",
    "FunctionResult",
    "ScriptedModel",
    "Turn",
]
