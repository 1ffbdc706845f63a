"""OpenAI Chat Completions over httpx, for OpenAI and any server that speaks the same protocol.

The conversion functions are plain ``dict`` in, ``dict`` out so the LiteLLM adapter, which
uses the same wire format, can share them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from afk.errors import ConfigurationError
from afk.llms._http import (
    ClientPool,
    HttpTransport,
    ProviderError,
    RetryPolicy,
    cost_usd,
    drain,
    tool_call,
)
from afk.llms.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    SystemMessage,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from afk.llms.settings import TOOL_CHOICES, ModelSettings, OutputSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# USD per million tokens (input, output), public list prices in 2025. Only an estimate: the
# provider's bill is the truth, and a model missing here simply reports no cost.
OPENAI_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the Chat Completions format (tool calls with JSON-text arguments; tool results as
    ``tool`` messages)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage | UserMessage):
            out.append({"role": message.role, "content": message.content})
        elif isinstance(message, AssistantMessage):
            entry: dict[str, Any] = {"role": "assistant", "content": message.text}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ]
            elif message.text is None:
                entry["content"] = ""  # null content is only allowed next to tool calls
            out.append(entry)
        elif isinstance(message, ToolMessage):
            # Chat Completions has no error flag on tool results; the content carries it.
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
    return out


def to_openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the Chat Completions ``tools`` format (type ``function``)."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]


def parse_usage(raw: Any, model: str, prices: Mapping[str, tuple[float, float]]) -> Usage | None:
    """A Chat Completions ``usage`` object as Usage, priced from ``prices`` when the model is
    listed; None when there is no usage object."""
    if not isinstance(raw, dict):
        return None
    input_tokens = int(raw.get("prompt_tokens") or 0)
    output_tokens = int(raw.get("completion_tokens") or 0)
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd(prices, model, input_tokens, output_tokens),
    )


def parse_chat_completion(
    data: Any,
    *,
    provider: str,
    model: str,
    prices: Mapping[str, tuple[float, float]] = OPENAI_PRICES,
) -> ModelResponse:
    """A non-streaming Chat Completions response body → :class:`ModelResponse`."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ProviderError(
            f"{provider} returned a response without choices", provider=provider, body=str(data)
        )
    message = choices[0].get("message") or {}
    calls = [
        tool_call(call["function"]["name"], call["function"].get("arguments"), call.get("id"))
        for call in message.get("tool_calls") or []
    ]
    return ModelResponse(
        text=message.get("content") or None,
        tool_calls=calls,
        usage=parse_usage(data.get("usage"), model, prices),
    )


def openai_settings(
    settings: ModelSettings | None, *, has_tools: bool, max_tokens_field: str = "max_tokens"
) -> dict[str, Any]:
    """Request fields for ``settings`` in the Chat Completions format. ``tool_choice`` and
    ``parallel_tool_calls`` go out only with tools (the API refuses them otherwise);
    ``extra_body`` is not included (callers merge it last)."""
    if settings is None:
        return {}
    out: dict[str, Any] = {}
    for name in ("temperature", "top_p", "seed"):
        value = getattr(settings, name)
        if value is not None:
            out[name] = value
    if settings.max_tokens is not None:
        out[max_tokens_field] = settings.max_tokens
    if settings.stop is not None:
        out["stop"] = settings.stop_list
    if has_tools and settings.tool_choice is not None:
        choice = settings.tool_choice
        out["tool_choice"] = (
            choice if choice in TOOL_CHOICES else {"type": "function", "function": {"name": choice}}
        )
    if has_tools and settings.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = settings.parallel_tool_calls
    return out


def response_format(output: OutputSpec | None) -> dict[str, Any] | None:
    """The ``response_format`` asking for JSON that fits ``output``'s schema (strict when the
    schema allows it), or None without an output schema."""
    if output is None:
        return None
    schema: dict[str, Any] = {"name": output.name, "schema": output.schema}
    if output.strict:
        schema["strict"] = True
    return {"type": "json_schema", "json_schema": schema}


@dataclass
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatStreamAccumulator:
    """Folds ``chat.completion.chunk`` objects into one response.

    Tool calls arrive in fragments keyed by ``index``: the first carries id and name, the rest
    pieces of the JSON arguments, and parallel calls interleave.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._text: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self._usage: Any = None

    def feed(self, chunk: Any) -> str | None:
        """Take one chunk; return its text delta, if any."""
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error"):
            raise ProviderError(
                f"{self.provider} stream failed: {chunk['error']}",
                provider=self.provider,
                body=json.dumps(chunk),
            )
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or []
        delta = (choices[0].get("delta") or {}) if choices else {}
        for position, fragment in enumerate(delta.get("tool_calls") or []):
            partial = self._calls.setdefault(fragment.get("index", position), _PartialCall())
            partial.id = fragment.get("id") or partial.id
            function = fragment.get("function") or {}
            # Some compatible servers repeat the name on every fragment, so assign, not append.
            partial.name = function.get("name") or partial.name
            partial.arguments.append(function.get("arguments") or "")
        text = delta.get("content")
        if text:
            self._text.append(text)
            return str(text)
        return None

    def response(
        self, *, model: str, prices: Mapping[str, tuple[float, float]] = OPENAI_PRICES
    ) -> ModelResponse:
        """The response folded from the chunks fed so far: text, tool calls in ``index`` order, and
        usage priced with ``prices``."""
        calls = [
            tool_call(p.name, "".join(p.arguments), p.id) for _, p in sorted(self._calls.items())
        ]
        return ModelResponse(
            text="".join(self._text) or None,
            tool_calls=calls,
            usage=parse_usage(self._usage, model, prices),
        )


class OpenAIModel:
    """A Chat Completions model. ``base_url`` (or ``OPENAI_BASE_URL``) selects another server."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        retry_base_s: float = 0.5,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        pool: ClientPool | None = None,
        provider: str = "openai",
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError(
                f"set OPENAI_API_KEY (or pass api_key=) to use OpenAI model {model!r}"
            )
        self.model = model
        self.model_name = model if provider == "openai" else f"{provider}:{model}"
        self.provider = provider
        self.extra_body = dict(extra_body or {})
        self.prices = OPENAI_PRICES if prices is None else prices
        self._transport = HttpTransport(
            provider=provider,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            headers={"Authorization": f"Bearer {key}", **(extra_headers or {})},
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=max_retries, base_s=retry_base_s),
            http_client=http_client,
            pool=pool,
        )
        # OpenAI itself deprecated max_tokens (its reasoning models refuse it), while
        # compatible servers (vLLM, llama.cpp, Ollama) read max_tokens.
        self.max_tokens_field = (
            "max_completion_tokens" if self.base_url == DEFAULT_BASE_URL else "max_tokens"
        )

    @property
    def base_url(self) -> str:
        """The API's base URL this model posts to."""
        return self._transport.base_url

    def _body(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        stream: bool,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages)}
        if tools:
            body["tools"] = to_openai_tools(tools)
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(
            openai_settings(settings, has_tools=bool(tools), max_tokens_field=self.max_tokens_field)
        )
        if output is not None:
            body["response_format"] = response_format(output)
        body.update(self.extra_body)
        if settings is not None and settings.extra_body:
            body.update(settings.extra_body)
        return body

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> ModelResponse:
        """One Chat Completions call with ``settings`` mapped to request fields and ``output`` as
        a JSON-schema ``response_format``; raises a ProviderError subclass for each HTTP or
        connection failure (after retries)."""
        data = await self._transport.post_json(
            "/chat/completions", self._body(messages, tools, False, settings, output)
        )
        return parse_chat_completion(
            data, provider=self.provider, model=self.model, prices=self.prices
        )

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> AsyncIterator[str | ModelResponse]:
        """One streamed Chat Completions call (``settings`` and ``output`` as in
        :meth:`complete`): text deltas as they arrive, then the whole response. Raises
        ProviderError when the stream carries no chunk at all."""
        accumulator = ChatStreamAccumulator(self.provider)
        body = self._body(messages, tools, True, settings, output)
        # aclosing: leaving at [DONE] must close the HTTP stream now, not whenever GC runs.
        received = False
        async with aclosing(self._transport.post_sse("/chat/completions", body)) as events:
            async for event in events:
                if event.data.strip() == "[DONE]":
                    if self._transport.reuses_connections:
                        await drain(events)
                    break
                received = True
                text = accumulator.feed(event.json_or_error(self.provider))
                if text:
                    yield text
        if not received:
            # e.g. a server that ignored stream=true and answered with one JSON body: treating
            # that as an empty answer would end the run with no text and no error.
            raise ProviderError(
                f"{self.provider} stream ended without any chunk", provider=self.provider
            )
        yield accumulator.response(model=self.model, prices=self.prices)

    def __repr__(self) -> str:
        return f"OpenAIModel({self.model!r}, base_url={self.base_url!r})"


__all__ = [
    "DEFAULT_BASE_URL",
    "OPENAI_PRICES",
    "ChatStreamAccumulator",
    "OpenAIModel",
    "openai_settings",
    "parse_chat_completion",
    "parse_usage",
    "response_format",
    "to_openai_messages",
    "to_openai_tools",
]
