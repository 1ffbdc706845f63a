"""A model that tries several models in order until one answers."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

from afk.errors import ConfigurationError, ModelError
from afk.llms._calling import call_kwargs
from afk.llms.messages import Message, ModelResponse, ToolSpec
from afk.llms.model import Model, model_label
from afk.llms.settings import ModelSettings, OutputSpec


class FallbackExhaustedError(ModelError):
    """Every model in a :class:`FallbackModel` failed; ``errors`` holds each failure in order."""

    def __init__(self, labels: Sequence[str], errors: Sequence[ModelError]) -> None:
        self.errors = list(errors)
        detail = "; ".join(f"{label}: {error}" for label, error in zip(labels, errors, strict=True))
        super().__init__(f"all {len(errors)} models failed: {detail}")


class FallbackModel:
    """Calls each model in turn and returns the first answer.

    Only :class:`~afk.errors.ModelError` moves on to the next model; configuration mistakes
    and bugs propagate at once. Names are resolved here, so a missing key or extra surfaces
    when the fallback list is built, not halfway through a run.
    """

    def __init__(self, models: Sequence[Model | str]) -> None:
        from afk.llms.registry import resolve_model  # the registry may import providers

        if isinstance(models, str) or not models:
            raise ConfigurationError("FallbackModel needs a non-empty list of models")
        self.models: list[Model] = [resolve_model(m) for m in models]
        self.labels = [model_label(m) for m in self.models]
        self.model_name = "fallback(" + ", ".join(self.labels) + ")"

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> ModelResponse:
        """The first model's response that does not raise a ModelError (``settings`` and
        ``output`` go to each model that takes them); raises FallbackExhaustedError carrying
        every model's error when all fail."""
        errors: list[ModelError] = []
        for model in self.models:
            try:
                kwargs = call_kwargs(model, "complete", settings, output)
                return await model.complete(messages, tools, **kwargs)
            except ModelError as exc:
                errors.append(exc)
        raise FallbackExhaustedError(self.labels, errors) from errors[-1]

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> AsyncIterator[str | ModelResponse]:
        """Streams from the first model that starts answering.

        A model that fails after it has sent text is not replaced: the caller has already
        shown that text, and a second answer would be spliced onto the first.
        """
        errors: list[ModelError] = []
        for model in self.models:
            sent_text = False
            try:
                items_of = _stream_or_complete(model, messages, tools, settings, output)
                async with aclosing(items_of) as items:
                    async for item in items:
                        if isinstance(item, str):
                            sent_text = True
                        yield item
                return
            except ModelError as exc:
                if sent_text:
                    raise
                errors.append(exc)
        raise FallbackExhaustedError(self.labels, errors) from errors[-1]

    def __repr__(self) -> str:
        return f"FallbackModel({self.models!r})"


async def _stream_or_complete(
    model: Model,
    messages: Sequence[Message],
    tools: Sequence[ToolSpec],
    settings: ModelSettings | None,
    output: OutputSpec | None,
) -> AsyncGenerator[str | ModelResponse, None]:
    stream: Any = getattr(model, "stream", None)
    if callable(stream):
        async for item in stream(messages, tools, **call_kwargs(model, "stream", settings, output)):
            yield item
        return
    kwargs = call_kwargs(model, "complete", settings, output)
    response: ModelResponse = await model.complete(messages, tools, **kwargs)
    if response.text:
        yield response.text
    yield response


__all__ = [
    "FallbackExhaustedError",
    "FallbackModel",
]
