"""ModelSettings: checked at construction, merged per run, and mapped by each adapter onto the
wire (asserted in the request bodies a real local server receives)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fakeserver import (
    FakeServer,
    anthropic_message,
    anthropic_sse_reply,
    json_reply,
    openai_completion,
    openai_sse_reply,
)
from run_support import run

from afk.agents import Agent
from afk.agents import ModelSettings as FromAgents
from afk.errors import ConfigurationError
from afk.llms import (
    FallbackModel,
    Message,
    ModelResponse,
    ModelSettings,
    ModelSettingsError,
    ScriptedModel,
    ToolSpec,
    UnsupportedSettingError,
    UserMessage,
)
from afk.llms.anthropic import AnthropicModel, anthropic_settings
from afk.llms.openai import OpenAIModel, openai_settings
from afk.tools import tool


@tool
def lookup(q: str) -> str:
    """Look something up.

    Args:
        q: what to look up
    """
    return f"found {q}"


TOOL = ToolSpec(name="lookup", description="Look up.", parameters={"type": "object"})
HELLO: list[Message] = [UserMessage(content="hi")]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


# -- construction ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field", "accepted"),
    [
        ({"temperature": 2.5}, "temperature", "between 0 and 2"),
        ({"temperature": "hot"}, "temperature", "must be a number"),
        ({"temperature": float("nan")}, "temperature", "must be a number"),
        ({"top_p": 1.1}, "top_p", "between 0 and 1"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": 1.5}, "max_tokens", "must be an int"),
        ({"max_tokens": True}, "max_tokens", "must be an int"),
        ({"seed": "7"}, "seed", "must be an int"),
        ({"stop": ""}, "stop", "str or list of str"),
        ({"stop": ["ok", 3]}, "stop", "str or list of str"),
        ({"tool_choice": ""}, "tool_choice", "'auto', 'required', 'none' or a tool name"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls", "True, False or None"),
        ({"extra_body": {"x": object()}}, "extra_body", "JSON-able"),
        ({"extra_body": {"x": float("inf")}}, "extra_body", "JSON-able"),
        ({"extra_body": [1]}, "extra_body", "dict with str keys"),
    ],
)
def test_bad_values_name_the_field_and_what_it_accepts(
    kwargs: dict[str, Any], field: str, accepted: str
) -> None:
    with pytest.raises(ModelSettingsError) as info:
        ModelSettings(**kwargs)
    assert info.value.field == field
    assert f"ModelSettings.{field}" in str(info.value) and accepted in str(info.value)
    assert isinstance(info.value, ConfigurationError)


def test_keyword_only_frozen_and_reexported_from_agents() -> None:
    with pytest.raises(TypeError):
        ModelSettings(0.5)  # type: ignore[misc]
    settings = ModelSettings(stop=["a", "b"])
    with pytest.raises(AttributeError):
        settings.temperature = 1.0  # type: ignore[misc]
    assert settings.stop == ("a", "b") and settings.stop_list == ["a", "b"]
    assert FromAgents is ModelSettings
    assert ModelSettings().is_empty() and not settings.is_empty()


def test_per_run_fields_win_one_by_one_and_extra_body_merges_by_key() -> None:
    agent = ModelSettings(temperature=0.2, max_tokens=100, extra_body={"a": 1, "b": 1})
    merged = agent.merged(ModelSettings(max_tokens=50, seed=3, extra_body={"b": 2}))
    assert merged == ModelSettings(
        temperature=0.2, max_tokens=50, seed=3, extra_body={"a": 1, "b": 2}
    )
    assert agent.merged(None) is agent


def test_agent_refuses_a_tool_choice_naming_no_tool_of_its_own() -> None:
    with pytest.raises(ModelSettingsError, match=r"'missing'.*'lookup'"):
        Agent(
            "a",
            ScriptedModel(["x"]),
            tools=[lookup],
            model_settings=ModelSettings(tool_choice="missing"),
        )
    with pytest.raises(
        ConfigurationError, match=r"model_settings must be an afk\.llms\.ModelSettings"
    ):
        Agent("a", ScriptedModel(["x"]), model_settings={"temperature": 0})  # type: ignore[arg-type]
    Agent(
        "a",
        ScriptedModel(["x"]),
        tools=[lookup],
        model_settings=ModelSettings(tool_choice="lookup"),
    )


# -- through a run ------------------------------------------------------------------------------
async def test_a_run_gives_the_model_the_agents_settings_merged_with_the_runs() -> None:
    model = ScriptedModel(["done"])
    agent = Agent("a", model, model_settings=ModelSettings(temperature=0.1, top_p=0.9))
    result = await run(agent, settings=ModelSettings(temperature=0.7, seed=11))
    assert result.state == "completed", result.error
    assert model.settings == [ModelSettings(temperature=0.7, top_p=0.9, seed=11)]


async def test_without_settings_the_model_gets_none() -> None:
    model = ScriptedModel(["done"])
    await run(Agent("a", model))
    assert model.settings == [None]


async def test_a_per_run_tool_choice_must_name_a_tool_of_the_agent() -> None:
    with pytest.raises(ModelSettingsError, match="tool_choice"):
        await run(Agent("a", ScriptedModel(["x"])), settings=ModelSettings(tool_choice="nope"))


class OldStyleModel:
    """A user model written before settings existed."""

    model_name = "old"

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelResponse:
        return ModelResponse(text="still works")


async def test_a_model_without_the_keyword_still_runs_and_the_result_says_so() -> None:
    agent = Agent("a", OldStyleModel(), model_settings=ModelSettings(temperature=0))
    result = await run(agent)
    assert result.state == "completed" and result.final_text == "still works"
    assert result.warnings == [
        "model old.complete() takes no settings keyword; its calls go out without them"
    ]
    # Fallback chains pass them on to the models that take them.
    scripted = ScriptedModel(["ok"])
    fallback = FallbackModel([OldStyleModel(), scripted])
    response = await fallback.complete(HELLO, [], settings=ModelSettings(seed=1))
    assert response.text == "still works" and scripted.settings == []


# -- OpenAI ------------------------------------------------------------------------------------
ALL = ModelSettings(
    temperature=0.3,
    max_tokens=64,
    top_p=0.5,
    stop="END",
    seed=42,
    tool_choice="lookup",
    parallel_tool_calls=False,
    extra_body={"user": "u-1"},
)


def openai_model(server: FakeServer, **kwargs: Any) -> OpenAIModel:
    return OpenAIModel("gpt-4o-mini", api_key="sk", base_url=server.url + "/v1", **kwargs)


async def test_openai_body_carries_every_setting(server: FakeServer) -> None:
    server.queue(json_reply(openai_completion({"content": "ok"})))
    await openai_model(server, extra_body={"user": "adapter", "store": False}).complete(
        HELLO, [TOOL], settings=ALL
    )
    [body] = server.bodies
    assert {k: v for k, v in body.items() if k not in ("model", "messages", "tools")} == {
        "temperature": 0.3,
        "max_tokens": 64,
        "top_p": 0.5,
        "stop": ["END"],
        "seed": 42,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "parallel_tool_calls": False,
        "user": "u-1",  # the settings' extra_body wins over the adapter's
        "store": False,
    }


async def test_openai_stream_carries_settings_and_omits_tool_fields_without_tools(
    server: FakeServer,
) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "ok"}}]}
    server.queue(openai_sse_reply([chunk]))
    items = [i async for i in openai_model(server).stream(HELLO, [], settings=ALL)]
    assert items[0] == "ok"
    [body] = server.bodies
    assert body["stream"] is True and body["seed"] == 42 and body["stop"] == ["END"]
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_openai_itself_gets_max_completion_tokens_compatible_servers_max_tokens() -> None:
    assert OpenAIModel("gpt-4o", api_key="k").max_tokens_field == "max_completion_tokens"
    assert OpenAIModel("m", api_key="k", base_url="http://h/v1").max_tokens_field == "max_tokens"
    fields = openai_settings(
        ModelSettings(max_tokens=5, tool_choice="required"),
        has_tools=True,
        max_tokens_field="max_completion_tokens",
    )
    assert fields == {"max_completion_tokens": 5, "tool_choice": "required"}


async def test_an_agent_on_an_openai_server_sends_the_run_settings(server: FakeServer) -> None:
    server.queue(openai_sse_reply([{"choices": [{"index": 0, "delta": {"content": "done"}}]}]))
    agent = Agent("a", openai_model(server), model_settings=ModelSettings(temperature=0))
    result = await run(agent, settings=ModelSettings(max_tokens=9))
    assert result.state == "completed", result.error
    [body] = server.bodies
    assert (body["temperature"], body["max_tokens"]) == (0, 9)


# -- Anthropic ---------------------------------------------------------------------------------
def anthropic_model(server: FakeServer) -> AnthropicModel:
    return AnthropicModel("claude-sonnet-4-5", api_key="ak", base_url=server.url, max_tokens=512)


async def test_anthropic_body_maps_what_the_messages_api_has(server: FakeServer) -> None:
    server.queue(json_reply(anthropic_message([{"type": "text", "text": "ok"}])))
    settings = ModelSettings(
        temperature=0.3,
        max_tokens=64,
        top_p=0.5,
        stop=["END", "STOP"],
        tool_choice="required",
        parallel_tool_calls=False,
        extra_body={"metadata": {"user_id": "u-1"}},
    )
    await anthropic_model(server).complete(HELLO, [TOOL], settings=settings)
    [body] = server.bodies
    assert {k: v for k, v in body.items() if k not in ("model", "messages", "tools")} == {
        "temperature": 0.3,
        "max_tokens": 64,  # the setting replaces the adapter's 512
        "top_p": 0.5,
        "stop_sequences": ["END", "STOP"],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
    }


async def test_anthropic_stream_names_a_tool_choice(server: FakeServer) -> None:
    server.queue(anthropic_sse_reply([{"type": "message_stop"}]))
    model = anthropic_model(server)
    settings = ModelSettings(tool_choice="lookup")
    items = [i async for i in model.stream(HELLO, [TOOL], settings=settings)]
    assert isinstance(items[-1], ModelResponse)
    [body] = server.bodies
    assert body["tool_choice"] == {"type": "tool", "name": "lookup"} and body["stream"] is True


def test_anthropic_tool_choice_forms() -> None:
    def choice(**kwargs: Any) -> Any:
        return anthropic_settings(ModelSettings(**kwargs), has_tools=True).get("tool_choice")

    assert choice(tool_choice="auto") == {"type": "auto"}
    assert choice(tool_choice="none", parallel_tool_calls=False) == {"type": "none"}
    assert choice(parallel_tool_calls=False) == {"type": "auto", "disable_parallel_tool_use": True}
    assert choice(parallel_tool_calls=True) is None  # parallel is the API's default
    assert anthropic_settings(ModelSettings(tool_choice="auto"), has_tools=False) == {}


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"seed": 1}, "seed"), ({"temperature": 1.5}, "temperature")]
)
async def test_anthropic_refuses_what_it_cannot_honour_before_sending(
    server: FakeServer, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(UnsupportedSettingError) as info:
        await anthropic_model(server).complete(HELLO, [], settings=ModelSettings(**kwargs))
    assert info.value.field == field and info.value.provider == "anthropic"
    assert server.requests == []


async def test_a_refused_setting_fails_the_run_with_the_reason(server: FakeServer) -> None:
    agent = Agent("a", anthropic_model(server), model_settings=ModelSettings(seed=3))
    result = await run(agent)
    assert result.state == "failed"
    assert result.error == (
        "UnsupportedSettingError: anthropic cannot honour ModelSettings.seed: "
        "the Messages API takes no seed"
    )


class KwargsModel:
    """A wrapper that hands its keywords on: it must not start receiving ``settings=``."""

    model_name = "wrapper"

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], **sdk_options: Any
    ) -> ModelResponse:
        assert sdk_options == {}
        return ModelResponse(text="ok")


async def test_a_model_taking_only_kwargs_is_called_the_old_way() -> None:
    result = await run(Agent("a", KwargsModel(), model_settings=ModelSettings(seed=1)))
    assert result.state == "completed", result.error
    assert "wrapper.complete() takes no settings keyword" in result.warnings[0]
