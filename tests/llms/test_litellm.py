"""The LiteLLM adapter: the install hint without the package, and the wire mapping with a
stand-in ``litellm`` module (the real one is an optional, heavy extra)."""

from __future__ import annotations

import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest

from afk.errors import ConfigurationError
from afk.llms import (
    AssistantMessage,
    Message,
    ModelResponse,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from afk.llms._http import ProviderAuthError, ProviderConnectionError
from afk.llms._providers import resolve_builtin
from afk.llms.litellm import LiteLLMModel

TOOL = ToolSpec(name="lookup", description="Look up.", parameters={"type": "object"})
TRANSCRIPT: list[Message] = [
    UserMessage(content="look it up"),
    AssistantMessage(tool_calls=(ToolCall("lookup", {"q": "x"}, "call_9"),)),
    ToolMessage(tool_call_id="call_9", tool_name="lookup", content="42"),
]


def test_missing_litellm_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # makes `import litellm` fail
    with pytest.raises(ConfigurationError) as info:
        resolve_builtin("litellm:bedrock/claude")
    message = str(info.value)
    assert "install afk-agents[litellm]" in message and "\n" not in message


class _Timeout(Exception):
    pass


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(f"status {status_code}")


class FakeLiteLLM(types.ModuleType):
    Timeout = _Timeout
    APIConnectionError = _Timeout

    def __init__(self, replies: list[Any]) -> None:
        super().__init__("litellm")
        self.calls: list[dict[str, Any]] = []
        self.replies = replies

    async def acompletion(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def completion_cost(self, completion_response: Any) -> float:
        return 0.5


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLiteLLM:
    module = FakeLiteLLM([])
    monkeypatch.setitem(sys.modules, "litellm", module)
    return module


async def test_complete_maps_openai_format_both_ways(fake: FakeLiteLLM) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    fake.replies.append(
        {
            "choices": [{"message": {"role": "assistant", "content": "hm", "tool_calls": [call]}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2},
        }
    )
    model = resolve_builtin("litellm:groq/llama-3.1")
    assert isinstance(model, LiteLLMModel) and model.model_name == "litellm:groq/llama-3.1"

    response = await model.complete(TRANSCRIPT, [TOOL])

    assert response.text == "hm" and response.tool_calls == [ToolCall("lookup", {}, "c1")]
    assert response.usage is not None and response.usage.cost_usd == 0.5
    [kwargs] = fake.calls
    assert kwargs["model"] == "groq/llama-3.1"
    assert kwargs["tools"][0]["function"]["name"] == "lookup"
    assert kwargs["messages"][1]["tool_calls"][0]["id"] == "call_9"
    assert kwargs["messages"][2] == {"role": "tool", "tool_call_id": "call_9", "content": "42"}


async def test_stream_accumulates_chunks(fake: FakeLiteLLM) -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        yield {"choices": [{"delta": {"content": "4"}}]}
        yield {"choices": [{"delta": {"content": "2"}}]}
        yield {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}

    fake.replies.append(chunks())
    items = [i async for i in LiteLLMModel("x").stream([UserMessage(content="q")], [])]
    assert items[:2] == ["4", "2"]
    final = items[-1]
    assert isinstance(final, ModelResponse) and final.text == "42"
    assert fake.calls[0]["stream_options"] == {"include_usage": True}


async def test_errors_map_by_type_and_status(fake: FakeLiteLLM) -> None:
    fake.replies += [_StatusError(429), {"choices": [{"message": {"content": "ok"}}]}]
    model = LiteLLMModel("x", retry_base_s=0.001)
    assert (await model.complete([UserMessage(content="q")], [])).text == "ok"
    assert len(fake.calls) == 2

    fake.replies += [_StatusError(401)]
    with pytest.raises(ProviderAuthError):
        await model.complete([UserMessage(content="q")], [])

    fake.replies += [_Timeout("slow"), _Timeout("slow")]
    with pytest.raises(ProviderConnectionError):
        await LiteLLMModel("x", max_retries=1, retry_base_s=0.001).complete([], [])


async def test_foreign_exceptions_are_not_disguised(fake: FakeLiteLLM) -> None:
    fake.replies.append(KeyError("bug"))
    with pytest.raises(KeyError):
        await LiteLLMModel("x").complete([], [])
