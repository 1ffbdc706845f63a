"""Anthropic Messages API over httpx."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import httpx

from afk.canonical import marked_loads, unmarked
from afk.errors import ConfigurationError
from afk.llms._http import (
    ClientPool,
    HttpTransport,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderServerError,
    RetryPolicy,
    SSEEvent,
    checked_arguments,
    cost_usd,
    drain,
    tool_call,
)
from afk.llms.messages import (
    AssistantMessage,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    Usage,
    UserMessage,
)
from afk.llms.settings import ModelSettings, OutputSpec, UnsupportedSettingError

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

# USD per million tokens (input, output), public list prices in 2025; an estimate only.
ANTHROPIC_PRICES: dict[str, tuple[float, float]] = {
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4": (1.00, 5.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-opus": (15.00, 75.00),
    "claude-opus-4": (15.00, 75.00),
    "claude-opus-4-5": (5.00, 25.00),
}

# A mid-stream ``error`` event has no HTTP status, only a structured type.
_STREAM_ERRORS: dict[str, type[ProviderError]] = {
    "authentication_error": ProviderAuthError,
    "permission_error": ProviderAuthError,
    "rate_limit_error": ProviderRateLimitError,
    "api_error": ProviderServerError,
    "overloaded_error": ProviderServerError,
    "invalid_request_error": ProviderBadRequestError,
}


def _append(out: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    # The API wants user and assistant turns to alternate: parallel tool results, or a user
    # note after them, become blocks of one user message.
    if not blocks:
        return
    if out and out[-1]["role"] == role:
        out[-1]["content"].extend(blocks)
    else:
        out.append({"role": role, "content": list(blocks)})


def to_anthropic_messages(
    messages: Sequence[Message],
) -> tuple[str | None, list[dict[str, Any]]]:
    """The top-level ``system`` text and the ``messages`` list."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            system.append(message.content)
        elif isinstance(message, UserMessage):
            _append(out, "user", [{"type": "text", "text": message.content}])
        elif isinstance(message, AssistantMessage):
            blocks: list[dict[str, Any]] = []
            if message.text:  # empty text blocks are rejected
                blocks.append({"type": "text", "text": message.text})
            blocks += [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in message.tool_calls
            ]
            _append(out, "assistant", blocks)
        elif isinstance(message, ToolMessage):
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
                "is_error": message.is_error,
            }
            _append(out, "user", [block])
    for entry in out:
        # tool_result blocks must lead their message; a stable sort keeps each group's order.
        entry["content"].sort(key=lambda b: b["type"] != "tool_result")
    return ("\n\n".join(system) if system else None), out


def to_anthropic_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Tool specs in the Messages API's ``tools`` format."""
    return [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
    ]


# The Messages API has no JSON mode in the request shape afk sends, so structured output is
# asked for as one more tool, whose input is the answer ("tool as output").
OUTPUT_TOOL = "final_result"


def anthropic_settings(
    settings: ModelSettings | None, *, has_tools: bool, output: bool = False
) -> dict[str, Any]:
    """Request fields for ``settings`` in the Messages format: ``stop`` → ``stop_sequences``,
    ``tool_choice`` → its object form (``required`` is ``any``), ``parallel_tool_calls=False``
    → ``disable_parallel_tool_use``. Raises UnsupportedSettingError for ``seed`` (the API has
    none) and a temperature above 1 (its range is 0..1). ``output``: the output tool is
    offered, so without a tool choice the model must call a tool (the output tool answers).
    ``extra_body`` is not included (callers merge it last)."""
    s = settings or ModelSettings()
    if s.seed is not None:
        raise UnsupportedSettingError("anthropic", "seed", "the Messages API takes no seed")
    if s.temperature is not None and s.temperature > 1:
        raise UnsupportedSettingError(
            "anthropic", "temperature", f"accepted: 0..1 for Anthropic, got {s.temperature}"
        )
    out: dict[str, Any] = {}
    for name in ("temperature", "top_p", "max_tokens"):
        if getattr(s, name) is not None:
            out[name] = getattr(s, name)
    if s.stop is not None:
        out["stop_sequences"] = s.stop_list
    if has_tools:
        choice = _tool_choice(s.tool_choice or ("required" if output else None))
        if s.parallel_tool_calls is False and (choice or {}).get("type") != "none":
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _tool_choice(choice: str | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    kinds = {"auto": "auto", "required": "any", "none": "none"}
    if choice in kinds:
        return {"type": kinds[choice]}
    return {"type": "tool", "name": choice}


def output_tool(output: OutputSpec) -> dict[str, Any]:
    """The tool a structured answer is given through."""
    return {
        "name": OUTPUT_TOOL,
        "description": "Give your final answer by calling this tool; its input is the answer.",
        "input_schema": output.schema,
    }


def take_output(response: ModelResponse) -> ModelResponse:
    """A call of the output tool becomes the response's text (its input as JSON). Next to
    other tool calls it is dropped: those run first, and the model answers again after."""
    outputs = [c for c in response.tool_calls if c.name == OUTPUT_TOOL]
    if not outputs:
        return response
    others = [c for c in response.tool_calls if c.name != OUTPUT_TOOL]
    if others:
        return dataclasses.replace(response, tool_calls=others)
    answer = outputs[0]
    text = answer.error if answer.error else json.dumps(answer.arguments)
    return dataclasses.replace(response, text=text, tool_calls=[])


def _input_tokens(usage: Mapping[str, Any]) -> int:
    # Cached prompt tokens are reported apart from input_tokens but are input all the same.
    return sum(
        int(usage.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )


def _usage(input_tokens: int, output_tokens: int, model: str, prices: Any) -> Usage:
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd(prices, model, input_tokens, output_tokens),
    )


def parse_message(
    data: Any,
    *,
    provider: str,
    model: str,
    prices: Mapping[str, tuple[float, float]] = ANTHROPIC_PRICES,
) -> ModelResponse:
    """A non-streaming Messages response body → :class:`ModelResponse`.

    ``data`` may come from :func:`~afk.canonical.marked_loads`: tool inputs are then checked
    strictly (a refused one becomes the call's ``error``), the rest is read as plain JSON.
    """
    content = data.get("content") if isinstance(data, dict) else None
    calls = [
        _tool_use(b)
        for b in (content if isinstance(content, list) else [])
        if isinstance(b, dict) and unmarked(b.get("type")) == "tool_use"
    ]
    data = unmarked(data)
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ProviderError(
            f"{provider} returned a response without content", provider=provider, body=str(data)
        )
    text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    raw = data.get("usage") or {}
    usage = _usage(_input_tokens(raw), int(raw.get("output_tokens") or 0), model, prices)
    return ModelResponse(text=text or None, tool_calls=calls, usage=usage)


def _tool_use(block: dict[str, Any]) -> ToolCall:
    arguments, error = checked_arguments(block.get("input"))
    return ToolCall(unmarked(block["name"]), arguments, unmarked(block.get("id")), error=error)


@dataclass
class _Block:
    type: str
    id: str | None = None
    name: str = ""
    parts: list[str] = field(default_factory=list)


class MessageStreamAccumulator:
    """Folds Messages SSE events into one response, block by block in ``index`` order."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._blocks: dict[int, _Block] = {}
        self._input_tokens = 0
        self._output_tokens = 0
        self.finished = False

    def feed(self, event: SSEEvent) -> str | None:
        """Take one event; return its text delta, if any."""
        data = event.json_or_error(self.provider)
        kind = event.event or data.get("type")
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self._input_tokens = _input_tokens(usage)
            self._output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            self._blocks[data["index"]] = _Block(
                type=block.get("type", ""), id=block.get("id"), name=block.get("name", "")
            )
        elif kind == "content_block_delta":
            return self._delta(data)
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            # Counts here are cumulative, so they replace what message_start said.
            if usage.get("output_tokens") is not None:
                self._output_tokens = int(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                self._input_tokens = _input_tokens(usage)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            error = data.get("error") or {}
            cls = _STREAM_ERRORS.get(error.get("type", ""), ProviderError)
            raise cls(
                f"{self.provider} stream failed: {error.get('type')}: {error.get('message')}",
                provider=self.provider,
                body=event.data,
            )
        return None

    def _delta(self, data: dict[str, Any]) -> str | None:
        block = self._blocks.setdefault(data["index"], _Block(type="text"))
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            block.parts.append(delta.get("text", ""))
            return str(delta.get("text", "")) or None
        if delta.get("type") == "input_json_delta":
            block.parts.append(delta.get("partial_json", ""))
        return None

    def response(
        self, *, model: str, prices: Mapping[str, tuple[float, float]] = ANTHROPIC_PRICES
    ) -> ModelResponse:
        """The response folded from the events fed so far: text, tool calls in block order, and
        usage priced with ``prices``."""
        ordered = [b for _, b in sorted(self._blocks.items())]
        text = "".join("".join(b.parts) for b in ordered if b.type == "text")
        calls = [tool_call(b.name, "".join(b.parts), b.id) for b in ordered if b.type == "tool_use"]
        usage = _usage(self._input_tokens, self._output_tokens, model, prices)
        return ModelResponse(text=text or None, tool_calls=calls, usage=usage)


class AnthropicModel:
    """A Claude model via the Messages API (``ANTHROPIC_BASE_URL`` selects another server)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 4096,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        retry_base_s: float = 0.5,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        pool: ClientPool | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigurationError(
                f"set ANTHROPIC_API_KEY (or pass api_key=) to use Anthropic model {model!r}"
            )
        self.model = model
        self.model_name = model
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self.prices = ANTHROPIC_PRICES if prices is None else prices
        headers = {"x-api-key": key, "anthropic-version": API_VERSION, **(extra_headers or {})}
        self._transport = HttpTransport(
            provider="anthropic",
            base_url=base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL,
            headers=headers,
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=max_retries, base_s=retry_base_s),
            http_client=http_client,
            pool=pool,
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
        system, converted = to_anthropic_messages(messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "messages": converted,
        }
        if system is not None:
            body["system"] = system
        offered = to_anthropic_tools(tools) + ([output_tool(output)] if output else [])
        if offered:
            body["tools"] = offered
        if stream:
            body["stream"] = True
        body.update(
            anthropic_settings(settings, has_tools=bool(offered), output=output is not None)
        )
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
        """One Messages API call with ``settings`` mapped (see :func:`anthropic_settings`) and
        ``output`` asked for through an output tool; raises a ProviderError subclass for each
        HTTP or connection failure (after retries)."""
        data = await self._transport.post_json(
            "/v1/messages", self._body(messages, tools, False, settings, output), loads=marked_loads
        )
        response = parse_message(data, provider="anthropic", model=self.model, prices=self.prices)
        return take_output(response) if output is not None else response

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        *,
        settings: ModelSettings | None = None,
        output: OutputSpec | None = None,
    ) -> AsyncIterator[str | ModelResponse]:
        """One streamed Messages API call (``settings`` and ``output`` as in :meth:`complete`):
        text deltas as they arrive, then the whole response. Raises ProviderConnectionError
        when the stream ends before ``message_stop``."""
        accumulator = MessageStreamAccumulator("anthropic")
        body = self._body(messages, tools, True, settings, output)
        async with aclosing(self._transport.post_sse("/v1/messages", body)) as events:
            async for event in events:
                text = accumulator.feed(event)
                if text:
                    yield text
                if accumulator.finished:
                    if self._transport.reuses_connections:
                        await drain(events)
                    break
        if not accumulator.finished:
            # Without message_stop the reply may be cut short mid tool call; don't act on it.
            raise ProviderConnectionError(
                "anthropic stream ended before message_stop", provider="anthropic"
            )
        response = accumulator.response(model=self.model, prices=self.prices)
        yield take_output(response) if output is not None else response

    def __repr__(self) -> str:
        return f"AnthropicModel({self.model!r}, base_url={self.base_url!r})"


__all__ = [
    "ANTHROPIC_PRICES",
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "OUTPUT_TOOL",
    "AnthropicModel",
    "MessageStreamAccumulator",
    "anthropic_settings",
    "output_tool",
    "parse_message",
    "take_output",
    "to_anthropic_messages",
    "to_anthropic_tools",
]
