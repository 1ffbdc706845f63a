"""Any model LiteLLM can reach, via ``litellm.acompletion`` in the OpenAI chat format.

LiteLLM is an optional extra and slow to import, so it is imported when a model is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import httpx

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
    openai_settings,
    parse_chat_completion,
    response_format,
    to_openai_messages,
    to_openai_tools,
)
from afk.llms.settings import ModelSettings, OutputSpec

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


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen and len(seen) < 20:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _connection_types(litellm: Any) -> tuple[type, ...]:
    found: list[Any] = [httpx.TransportError, ConnectionError, TimeoutError]
    found += [getattr(litellm, "Timeout", None), getattr(litellm, "APIConnectionError", None)]
    openai = sys.modules.get("openai")  # LiteLLM talks to many providers through openai's SDK
    found.append(getattr(openai, "APIConnectionError", None))
    return tuple(t for t in found if isinstance(t, type))


def map_litellm_error(litellm: Any, exc: Exception) -> ProviderError | None:
    """A provider error for an exception LiteLLM raised, or None if it is not one of its own.

    LiteLLM reports a refused connection as ``InternalServerError`` with status 500, so the
    cause chain is read first: a transport failure anywhere in it is a connection error.
    """
    connection_types = _connection_types(litellm)
    if any(isinstance(link, connection_types) for link in _causes(exc)):
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
    """``litellm:NAME`` → ``litellm.acompletion(model=NAME, ...)``.

    afk's retry policy is the only retry loop: LiteLLM's own (``num_retries``) and the SDK's
    under it (``max_retries``) are switched off, so ``max_retries=3`` means at most 4 requests.
    A provider key LiteLLM needs and cannot find fails here, before a run starts.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        max_retries: int = 3,
        retry_base_s: float = 0.5,
        timeout_s: float = 60.0,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self._litellm = import_litellm(model)
        self.model = model
        self.model_name = f"litellm:{model}"
        self.api_key = api_key
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.extra_body = dict(extra_body or {})
        self.retry = RetryPolicy(max_retries=max_retries, base_s=retry_base_s)
        if api_key is None and "api_key" not in self.extra_body:
            self._check_key()

    def _check_key(self) -> None:
        check = getattr(self._litellm, "validate_environment", None)
        try:
            found = check(model=self.model, api_base=self.api_base) if callable(check) else {}
        except Exception:
            return  # a model LiteLLM cannot map: let the call itself say what is wrong
        # Only API keys: other "missing" entries (OLLAMA_API_BASE, AWS_*) have defaults or
        # credential chains (profiles, instance roles) that LiteLLM finds at call time.
        keys = [k for k in found.get("missing_keys") or () if str(k).endswith("_API_KEY")]
        missing = [k for k in keys if not os.environ.get(k)]
        if missing:
            raise ConfigurationError(
                f"set {' or '.join(missing)} (or pass api_key=) to use LiteLLM model {self.model!r}"
            )

    def _kwargs(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        stream: bool,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages),
            "timeout": self.timeout_s,
            # afk retries (and counts attempts); two more loops underneath made one 429 cost
            # twelve requests.
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        if tools:
            kwargs["tools"] = to_openai_tools(tools)
        if stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        kwargs.update(openai_settings(settings, has_tools=bool(tools)))
        if output is not None:
            kwargs["response_format"] = response_format(output)
        kwargs.update(self.extra_body)
        if settings is not None and settings.extra_body:
            kwargs.update(settings.extra_body)
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
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> ModelResponse:
        """One ``litellm.acompletion`` call (``settings`` in the OpenAI format, ``output`` as a
        JSON-schema ``response_format``), with LiteLLM's cost estimate in the usage; LiteLLM's
        errors become ProviderError subclasses."""
        raw = await self._call(self._kwargs(messages, tools, False, settings, output))
        response = parse_chat_completion(
            as_dict(raw), provider="litellm", model=self.model, prices=_NO_PRICES
        )
        if response.usage is not None:
            usage = dataclasses.replace(response.usage, cost_usd=self._cost(raw))
            response = dataclasses.replace(response, usage=usage)
        return response

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> AsyncIterator[str | ModelResponse]:
        """One streamed ``litellm.acompletion`` call (``settings`` and ``output`` as in
        :meth:`complete`): text deltas as they arrive, then the whole response."""
        chunks = await self._call(self._kwargs(messages, tools, True, settings, output))
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
