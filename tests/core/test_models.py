"""Models: scripted and function models, the conversation they see, and the name registry."""

from __future__ import annotations

import uuid

import pytest
from hitl_support import Calls, drop_agent, gate, headless, interactive, of_type, one, tool_messages

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.errors import AfkError, ModelNotFoundError
from afk.llms import (
    AssistantMessage,
    FunctionModel,
    ModelResponse,
    ScriptedModel,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    register_model,
    unregister_model,
)


@pytest.fixture
def names():
    """Unique model names for the registry, unregistered afterwards."""
    created: list[str] = []

    def make(suffix: str = "") -> str:
        name = f"test-{uuid.uuid4().hex[:8]}{suffix}"
        created.append(name)
        return name

    yield make
    for name in created:
        unregister_model(name)


# -- scripted and function models --------------------------------------------------------------


async def test_scripted_model_plays_its_turns_in_order():
    calls = Calls()
    result = await headless().run(drop_agent(calls), user_message="drop")
    assert result.state == "completed"
    assert result.final_text == "Done."
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    assert len(of_type(result, "llm_called")) == 2


async def test_scripted_model_running_out_of_turns_fails_the_run():
    calls = Calls()
    agent = drop_agent(calls, turns=[ToolCall("drop_table", {"name": "a"})])
    result = await headless().run(agent, user_message="drop")
    assert result.state == "failed"
    failed = one(result, "run_failed")
    assert failed.error_type == "ModelError"
    assert result.error is not None
    assert result.events[-1].type == "run_failed"


async def test_scripted_model_counts_assistant_turns_in_the_conversation():
    model = ScriptedModel(["first", "second"])
    first = await model.complete([SystemMessage(content="s"), UserMessage(content="u")], [])
    second = await model.complete(
        [SystemMessage(content="s"), UserMessage(content="u"), AssistantMessage(text="first")], []
    )
    assert (first.text, second.text) == ("first", "second")


@pytest.mark.parametrize("is_async", [False, True])
async def test_function_model_sees_instructions_first_then_the_whole_conversation(is_async):
    seen: list[list] = []

    def decide(messages, tools):
        seen.append(list(messages))
        if len(seen) == 1:
            return ToolCall("read_table", {"name": "users"}, id="call_fixed")
        return "All read."

    async def adecide(messages, tools):
        return decide(messages, tools)

    calls = Calls()
    agent = Agent(
        "reader",
        FunctionModel(adecide if is_async else decide),
        "Be careful.",
        tools=[calls.read_table_tool()],
    )
    result = await headless().run(agent, user_message="read users")
    assert result.final_text == "All read."

    first, second = seen
    assert first == [SystemMessage(content="Be careful."), UserMessage(content="read users")]
    assert second[:2] == first
    assistant, tool_result = second[2], second[3]
    assert isinstance(assistant, AssistantMessage)
    assert assistant.tool_calls == (ToolCall("read_table", {"name": "users"}, id="call_fixed"),)
    assert isinstance(tool_result, ToolMessage)
    assert tool_result.tool_call_id == "call_fixed"
    assert tool_result.tool_name == "read_table"
    assert tool_result.content == "rows of users"


@pytest.mark.parametrize(
    "reply",
    [
        "plain text",
        ModelResponse(text="plain text"),
    ],
)
async def test_function_model_may_return_text_or_a_response(reply):
    result = await headless().run(
        Agent("a", FunctionModel(lambda m, t: reply), "i"), user_message="x"
    )
    assert result.final_text == "plain text"


async def test_function_model_may_return_a_list_of_tool_calls():
    calls = Calls()

    def decide(messages, tools):
        if not any(isinstance(m, ToolMessage) for m in messages):
            return [ToolCall("read_table", {"name": "a"}), ToolCall("read_table", {"name": "b"})]
        return "ok"

    agent = Agent("a", FunctionModel(decide), "i", tools=[calls.read_table_tool()])
    result = await headless().run(agent, user_message="x")
    assert sorted(calls.log, key=str) == [
        ("read_table", {"name": "a"}),
        ("read_table", {"name": "b"}),
    ]
    assert [e.args["name"] for e in result.tool_executions] == ["a", "b"]


async def test_a_model_that_raises_fails_the_run_without_raising():
    def broken(messages, tools):
        raise RuntimeError("provider melted")

    result = await headless().run(Agent("a", FunctionModel(broken), "i"), user_message="x")
    assert result.state == "failed"
    assert "provider melted" in one(result, "run_failed").error


# -- tool call ids -----------------------------------------------------------------------------


async def test_the_runner_gives_every_tool_call_without_an_id_a_unique_one_before_policy():
    seen_ids = []

    def spy(event):
        seen_ids.append(event.tool_call_id)
        return False

    calls = Calls()
    agent = drop_agent(
        calls,
        turns=[
            [
                ToolCall("read_table", {"name": "a"}),
                ToolCall("read_table", {"name": "b"}),
                ToolCall("read_table", {"name": "c"}, id="model-id"),
            ],
            ToolCall("read_table", {"name": "d"}),
            "done",
        ],
    )
    runner = headless(PolicyEngine(rules=[PolicyRule("spy", action="deny", condition=spy)]))
    result = await runner.run(agent, user_message="x")

    assert len(seen_ids) == 4
    assert all(seen_ids)
    assert len(set(seen_ids)) == 4
    assert seen_ids[2] == "model-id"
    assert [e.tool_call_id for e in result.tool_executions] == seen_ids
    assert [m.tool_call_id for m in tool_messages(result.messages)] == seen_ids
    assert [e.tool_call_id for e in of_type(result, "policy_decision")] == seen_ids
    # the assistant turns kept in the conversation carry the same ids
    kept = [c.id for m in result.messages if isinstance(m, AssistantMessage) for c in m.tool_calls]
    assert kept == seen_ids


# -- the registry ------------------------------------------------------------------------------


async def test_an_agent_takes_a_registered_model_name(names):
    name = names()
    register_model(name, ScriptedModel(["hello from the registry"]))
    result = await headless().run(Agent("a", name, "i"), user_message="x")
    assert result.final_text == "hello from the registry"


async def test_registering_again_replaces(names):
    name = names()
    register_model(name, ScriptedModel(["old"]))
    register_model(name, ScriptedModel(["new"]))
    result = await headless().run(Agent("a", name, "i"), user_message="x")
    assert result.final_text == "new"


async def test_prefix_registration_exact_beats_prefix_and_longest_prefix_wins(names):
    base = names(":")
    longer = base + "big:"
    register_model(base, ScriptedModel(["short prefix"]))
    register_model(longer, ScriptedModel(["long prefix"]))
    register_model(base + "big:exact", ScriptedModel(["exact"]))
    try:
        runner = headless()

        async def answer(model_name):
            return (await runner.run(Agent("a", model_name, "i"), user_message="x")).final_text

        assert await answer(base + "small") == "short prefix"
        assert await answer(longer + "thing") == "long prefix"
        assert await answer(base + "big:exact") == "exact"
    finally:
        unregister_model(longer)
        unregister_model(base + "big:exact")


async def test_a_factory_is_called_once_per_full_model_name_and_cached(names):
    prefix = names(":")
    built = []

    def factory(full_name):
        built.append(full_name)
        return ScriptedModel([f"I am {full_name}"])

    register_model(prefix, factory)
    runner = headless()
    for _ in range(2):
        result = await runner.run(Agent("a", prefix + "one", "i"), user_message="x")
        assert result.final_text == f"I am {prefix}one"
    await runner.run(Agent("a", prefix + "two", "i"), user_message="x")
    assert built == [prefix + "one", prefix + "two"]

    # Registering again replaces the factory and forgets what the old one built.
    register_model(prefix, lambda full: ScriptedModel(["rebuilt"]))
    result = await runner.run(Agent("a", prefix + "one", "i"), user_message="x")
    assert result.final_text == "rebuilt"


async def test_an_unknown_model_name_raises_before_the_run_starts_naming_it():
    runner = headless()
    agent = Agent("a", "no-such-model-zzz", "i")
    with pytest.raises(ModelNotFoundError) as info:
        await runner.run(agent, user_message="x")
    assert isinstance(info.value, AfkError)
    assert "no-such-model-zzz" in str(info.value)


async def test_an_unknown_model_name_raises_from_run_stream_itself():
    runner = headless()
    with pytest.raises(ModelNotFoundError, match="no-such-model-zzz"):
        runner.run_stream(Agent("a", "no-such-model-zzz", "i"), user_message="x")


def test_an_unknown_model_name_raises_from_run_sync():
    with pytest.raises(ModelNotFoundError, match="no-such-model-zzz"):
        headless().run_sync(Agent("a", "no-such-model-zzz", "i"), user_message="x")


async def test_model_objects_and_names_behave_the_same_under_policy(names):
    name = names()
    register_model(name, ScriptedModel([ToolCall("drop_table", {"name": "t"}), "Done."]))
    calls = Calls()
    by_name = Agent("a", name, "i", tools=[calls.drop_table_tool()])
    runner, _provider = interactive(gate("deny"))
    result = await runner.run(by_name, user_message="x")
    assert result.state == "completed"
    assert calls.log == []
