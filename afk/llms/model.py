"""The model protocol every provider adapter and test model implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from afk.llms.messages import Message, ModelResponse, ToolSpec


@runtime_checkable
class Model(Protocol):
    """Anything with ``async complete(messages, tools) -> ModelResponse`` is a model.

    A model may also offer ``stream(messages, tools)``: an async iterator that yields ``str``
    text deltas and, last, the complete :class:`ModelResponse`. The runner prefers it when
    present and turns the deltas into ``text_delta`` events.

    Either method may also take the keywords ``settings`` (a
    :class:`~afk.llms.settings.ModelSettings`) and ``output`` (an
    :class:`~afk.llms.settings.OutputSpec`, the JSON schema of a structured answer): the runner
    passes them only to methods whose signature has them, so ``complete(messages, tools)``
    stays a complete model.
    """

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        """The model's reply to ``messages`` with ``tools`` offered. Failures raise ModelError
        (ProviderError subclasses for HTTP providers)."""


class StreamingModel(Model, Protocol):
    """A model that can also stream its reply; the runner streams from it when asked to."""

    def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ModelResponse]:
        """Text deltas as the model produces them, then the whole :class:`ModelResponse` last."""


def model_label(model: object) -> str:
    """A short name for events and errors."""
    name = getattr(model, "model_name", None) or getattr(model, "name", None)
    return str(name) if name else type(model).__name__


__all__ = [
    "Model",
    "StreamingModel",
    "model_label",
]
