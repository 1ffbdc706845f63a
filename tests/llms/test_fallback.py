"""FallbackModel: next model on ModelError, never on other errors or after streamed text."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from afk.errors import ConfigurationError, ModelError
from afk.llms import Message, ModelResponse, ScriptedModel, ToolSpec, UserMessage
from afk.llms._http import ProviderServerError
from afk.llms.fallback import FallbackExhaustedError, FallbackModel

HI = [UserMessage(content="hi")]


class Failing:
    def __init__(self, error: Exception, name: str = "failing") -> None:
        self.error = error
        self.model_name = name
        self.calls = 0

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        self.calls += 1
        raise self.error


class HalfStream:
    """Streams some text, then fails."""

    model_name = "half"

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        raise AssertionError("stream should be used")

    async def stream(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ModelResponse]:
        yield "partial"
        raise ProviderServerError("dropped", provider="x")


def server_error() -> ProviderServerError:
    return ProviderServerError("boom", provider="openai", status_code=503)


async def test_next_model_answers_after_model_error() -> None:
    first = Failing(server_error())
    model = FallbackModel([first, ScriptedModel(["from backup"], name="backup")])
    assert (await model.complete(HI, [])).text == "from backup"
    assert first.calls == 1
    assert model.model_name == "fallback(failing, backup)"


async def test_all_failing_raises_with_every_error() -> None:
    errors = [server_error(), ModelError("out of turns")]
    model = FallbackModel([Failing(errors[0], "a"), Failing(errors[1], "b")])
    with pytest.raises(FallbackExhaustedError) as info:
        await model.complete(HI, [])
    assert info.value.errors == errors
    assert "a: boom" in str(info.value) and "b: out of turns" in str(info.value)


async def test_non_model_errors_are_not_swallowed() -> None:
    backup = ScriptedModel(["unused"])
    model = FallbackModel([Failing(KeyError("bug")), backup])
    with pytest.raises(KeyError):
        await model.complete(HI, [])


async def test_stream_falls_back_before_text_and_uses_complete_when_no_stream() -> None:
    model = FallbackModel([Failing(server_error()), ScriptedModel(["plain"])])
    items = [i async for i in model.stream(HI, [])]
    assert items[0] == "plain"
    assert isinstance(items[1], ModelResponse) and items[1].text == "plain"


async def test_stream_does_not_splice_after_text_was_sent() -> None:
    model = FallbackModel([HalfStream(), ScriptedModel(["other"])])
    seen: list[object] = []
    with pytest.raises(ProviderServerError):
        async for item in model.stream(HI, []):
            seen.append(item)
    assert seen == ["partial"]


def test_needs_models_and_resolves_names(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError):
        FallbackModel([])
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        FallbackModel([ScriptedModel(["x"]), "gpt-4o"])
