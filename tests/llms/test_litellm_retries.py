"""The LiteLLM adapter with the real ``litellm`` package against a real local server speaking
Chat Completions: afk's retry loop is the only one, a refused connection is a connection
error, a missing key fails before the run, and settings reach the wire."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fakeserver import FakeServer, error_reply, json_reply, openai_completion, unused_port

# LiteLLM fetches its price list from GitHub at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

litellm.suppress_debug_info = True  # it prints a "give feedback" banner on every error

from afk.agents import Agent  # noqa: E402
from afk.core import Runner  # noqa: E402
from afk.errors import ConfigurationError  # noqa: E402
from afk.llms import ModelSettings, UserMessage  # noqa: E402
from afk.llms._http import (  # noqa: E402
    ProviderConnectionError,
    ProviderRateLimitError,
    ProviderServerError,
)
from afk.llms._output import Output  # noqa: E402
from afk.llms._providers import resolve_builtin  # noqa: E402
from afk.llms.litellm import LiteLLMModel  # noqa: E402

HELLO = [UserMessage(content="hi")]
# LiteLLM's own modules, loaded on its first call, trip a pydantic warning; not afk's concern.
pytestmark = pytest.mark.filterwarnings("ignore:Item.* using the `ReadOnly` qualifier:UserWarning")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def make(base: str, **kwargs: Any) -> LiteLLMModel:
    options: dict[str, Any] = {"api_key": "sk-test", "retry_base_s": 0.001, **kwargs}
    return LiteLLMModel("openai/gpt-4o-mini", api_base=base, **options)


@pytest.mark.parametrize("max_retries", [0, 3])
async def test_a_429_makes_exactly_the_attempts_afks_policy_allows(
    server: FakeServer, max_retries: int
) -> None:
    server.queue(*[error_reply(429, "slow down")] * 20)
    with pytest.raises(ProviderRateLimitError) as info:
        await make(server.url + "/v1", max_retries=max_retries).complete(HELLO, [])
    assert len(server.requests) == max_retries + 1
    assert info.value.status_code == 429


async def test_a_5xx_then_success_is_retried_by_afk_once(server: FakeServer) -> None:
    server.queue(error_reply(503, "busy"), json_reply(openai_completion({"content": "ok"})))
    response = await make(server.url + "/v1").complete(HELLO, [])
    assert response.text == "ok" and len(server.requests) == 2


async def test_a_refused_connection_is_a_connection_error_not_http_500() -> None:
    model = make(f"http://127.0.0.1:{unused_port()}/v1", max_retries=0)
    with pytest.raises(ProviderConnectionError) as info:
        await model.complete(HELLO, [])
    assert info.value.retryable and info.value.status_code is None
    assert not isinstance(info.value, ProviderServerError)


def test_a_missing_key_fails_when_the_model_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError) as info:
        resolve_builtin("litellm:openai/gpt-4o-mini")
    message = str(info.value)
    assert message == (
        "set OPENAI_API_KEY (or pass api_key=) to use LiteLLM model 'openai/gpt-4o-mini'"
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk")
    assert resolve_builtin("litellm:openai/gpt-4o-mini") is not None
    # Providers whose "missing" settings have defaults are not refused.
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    assert resolve_builtin("litellm:ollama/llama3.2") is not None


async def test_a_missing_key_fails_the_run_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match=r"^set ANTHROPIC_API_KEY"):
        await Runner().run(Agent("a", "litellm:anthropic/claude-sonnet-4-5"), user_message="hi")


async def test_settings_and_the_output_schema_reach_the_wire(server: FakeServer) -> None:
    server.queue(json_reply(openai_completion({"content": '{"result": 1}'})))
    settings = ModelSettings(
        temperature=0.2, max_tokens=7, seed=5, stop="X", extra_body={"user": "u"}
    )
    output = Output(int).spec
    await make(server.url + "/v1").complete(HELLO, [], settings=settings, output=output)
    [body] = server.bodies
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 7, 5)
    assert body["stop"] == ["X"] and body["user"] == "u"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["result"]
