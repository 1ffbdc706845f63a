"""Any model LiteLLM can reach, via ``litellm.acompletion`` in the OpenAI chat format.

LiteLLM is an optional extra and slow to import, so it is imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from afk.errors import ConfigurationError
from afk.llms._http import (
    ProviderConnectionError,
    ProviderError,
    RetryPolicy,
    call_with_retries,
    error_for_status,
)
from afk.llms.messages import Message, ModelResponse, ToolSpec
from afk.llms.openai import (
    ChatStreamAccumulator,
    parse_chat_completion,
    to_openai_messages,
    to_openai_tools,
)

_NO_PRICES: dict[str, tuple[float, float]] = {}


def import_litellm(model: str) -> Any:
    """The ``litellm`` module; raises ConfigurationError with the install hint when it is absent."""
    try:
        return importlib.import_module("litellm")
    except ImportError as exc:
        raise ConfigurationError(
            f"install afk-agents[litellm] to use litellm:... models (needed for litellm:{model})"
        ) from exc


def as_dict(obj: Any) -> Any:
    """LiteLLM returns pydantic objects shaped like OpenAI's JSON; the converters want dicts."""
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    return dump() if callable(dump) else obj


def map_litellm_error(litellm: Any, exc: Exception) -> ProviderError | None:
    """A provider error for an exception LiteLLM raised, or None if it is not one of its own."""
    connection_types = tuple(
        t
        for t in (getattr(litellm, "Timeout", None), getattr(litellm, "APIConnectionError", None))
        if isinstance(t, type)
    )
    if connection_types and isinstance(exc, connection_types):
        return ProviderConnectionError(f"litellm request failed: {exc}", provider="litellm")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return error_for_status(
            "litellm", status, str(exc), headers if isinstance(headers, Mapping) else {}
        )
    # LiteLLM's exceptions come from its own (or the openai) package; anything else is a bug
    # on our side and must not be disguised as a provider failure.
    if type(exc).__module__.split(".")[0] in ("litellm", "openai"):
        return ProviderError(f"litellm request failed: {exc}", provider="litellm")
    return None


class LiteLLMModel:
    """``litellm:NAME`` → ``litellm.acompletion(model=NAME, ...)``."""

    def __init__(
        self,
        model: str,
        *,
        max_retries: int = 3,
        retry_base_s: float = 0.5,
        timeout_s: float = 60.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self._litellm = import_litellm(model)
        self.model = model
        self.model_name = f"litellm:{model}"
        self.timeout_s = timeout_s
        self.extra_body = dict(extra_body or {})
        self.retry = RetryPolicy(max_retries=max_retries, base_s=retry_base_s)

    def _kwargs(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], stream: bool
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "timeout": self.timeout_s,
        }
        if tools:
            kwargs["tools"] = to_openai_tools(tools)
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        kwargs.update(self.extra_body)
        return kwargs

    async def _call(self, kwargs: dict[str, Any]) -> Any:
        async def attempt() -> Any:
            try:
                return await self._litellm.acompletion(**kwargs)
            except Exception as exc:
                error = map_litellm_error(self._litellm, exc)
                if error is None:
                    raise
                raise error from exc

        return await call_with_retries(attempt, self.retry)

    def _cost(self, raw: Any) -> float | None:
        try:
            return float(self._litellm.completion_cost(completion_response=raw))
        except Exception:
            return None  # LiteLLM raises for models without a known price; cost is optional

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        """One ``litellm.acompletion`` call, with LiteLLM's cost estimate in the usage; LiteLLM's
        errors become ProviderError subclasses."""
        raw = await self._call(self._kwargs(messages, tools, stream=False))
        response = parse_chat_completion(
            as_dict(raw), provider="litellm", model=self.model, prices=_NO_PRICES
        )
        if response.usage is not None:
            usage = dataclasses.replace(response.usage, cost_usd=self._cost(raw))
            response = dataclasses.replace(response, usage=usage)
        return response

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ModelResponse]:
        """One streamed ``litellm.acompletion`` call: text deltas as they arrive, then the whole
        response."""
        chunks = await self._call(self._kwargs(messages, tools, stream=True))
        accumulator = ChatStreamAccumulator("litellm")
        try:
            async for chunk in chunks:
                text = accumulator.feed(as_dict(chunk))
                if text:
                    yield text
        except Exception as exc:
            error = map_litellm_error(self._litellm, exc)
            if error is None:
                raise
            raise error from exc
        yield accumulator.response(model=self.model, prices=_NO_PRICES)

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r})"


__all__ = [
    "LiteLLMModel",
    "as_dict",
    "import_litellm",
    "map_litellm_error",
]
