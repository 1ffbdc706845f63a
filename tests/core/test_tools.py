"""@tool: typed functions become tools with a schema; arguments are validated before running."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hitl_support import gate, headless, interactive, of_type, one, tool_messages, types

from afk.agents import Agent
from afk.llms import FunctionModel, ScriptedModel, ToolCall
from afk.tools import Tool, tool


def test_bare_tool_takes_name_description_and_schema_from_the_function():
    @tool
    def resize_disk(volume: str, size_gb: int, force: bool = False) -> str:
        """Grow a disk volume.

        Args:
            volume: The volume id.
            size_gb: New size in gigabytes.
        """
        return "ok"

    assert isinstance(resize_disk, Tool)
    assert resize_disk.name == "resize_disk"
    assert resize_disk.description == "Grow a disk volume."
    schema = resize_disk.parameters
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"volume", "size_gb", "force"}
    assert schema["properties"]["volume"]["type"] == "string"
    assert schema["properties"]["size_gb"]["type"] == "integer"
    assert schema["properties"]["force"]["type"] == "boolean"
    assert schema["properties"]["volume"]["description"] == "The volume id."
    assert schema["properties"]["size_gb"]["description"] == "New size in gigabytes."
    assert sorted(schema["required"]) == ["size_gb", "volume"]
    spec = resize_disk.spec()
    assert (spec.name, spec.description, spec.parameters) == (
        "resize_disk",
        "Grow a disk volume.",
        schema,
    )


def test_tool_with_options_overrides_name_and_description():
    @tool(name="wipe", description="Erase everything.", inline=False)
    async def erase(target: str) -> str:
        return target

    assert erase.name == "wipe"
    assert erase.description == "Erase everything."
    assert erase.inline is False
    assert list(erase.parameters["properties"]) == ["target"]


async def test_the_model_is_told_about_tools_with_their_schema():
    @tool
    def ping(host: str) -> str:
        """Ping a host."""
        return "pong"

    seen = []

    def model(messages, tools):
        seen.append(tools)
        return "bye"

    await headless().run(Agent("a", FunctionModel(model), "i", tools=[ping]), user_message="x")
    [spec] = seen[0]
    assert spec.name == "ping"
    assert spec.description == "Ping a host."
    assert spec.parameters == ping.parameters


async def test_sync_and_async_tools_both_run_and_their_output_goes_to_the_model():
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    @tool
    async def shout(text: str) -> dict:
        await asyncio.sleep(0)
        return {"text": text.upper()}

    agent = Agent(
        "calc",
        ScriptedModel(
            [[ToolCall("add", {"a": 2, "b": 3}), ToolCall("shout", {"text": "hi"})], "done"]
        ),
        "i",
        tools=[add, shout],
    )
    result = await headless().run(agent, user_message="x")
    assert result.state == "completed"
    add_run, shout_run = result.tool_executions
    assert (add_run.output, add_run.success, add_run.executed) == (5, True, True)
    assert shout_run.output == {"text": "HI"}
    contents = [m.content for m in tool_messages(result.messages)]
    assert contents[0] == "5"
    assert "HI" in contents[1]


async def test_arguments_are_validated_with_pydantic_and_coerced_for_the_body():
    received = []

    @tool
    def scale(replicas: int) -> str:
        received.append(replicas)
        return "ok"

    agent = Agent(
        "a", ScriptedModel([ToolCall("scale", {"replicas": "3"}), "done"]), "i", tools=[scale]
    )
    result = await headless().run(agent, user_message="x")
    assert received == [3]
    assert result.tool_executions[0].success


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"replicas": "many"}, "replicas"),
        ({}, "replicas"),
        ({"replicas": 2, "colour": "red"}, "colour"),
    ],
)
async def test_invalid_arguments_become_an_error_result_naming_the_argument(arguments, named):
    received = []

    @tool
    def scale(replicas: int) -> str:
        received.append(replicas)
        return "ok"

    agent = Agent("a", ScriptedModel([ToolCall("scale", arguments), "done"]), "i", tools=[scale])
    result = await headless().run(agent, user_message="x")

    assert result.state == "completed"
    assert received == []
    [execution] = result.tool_executions
    assert execution.success is False
    assert execution.executed is False
    assert execution.denied is False
    assert named in execution.error
    [message] = tool_messages(result.messages)
    assert message.is_error
    assert named in message.content
    completed = one(result, "tool_completed")
    assert completed.success is False and completed.denied is False
    assert "tool_started" not in types(result)


@pytest.mark.parametrize("action", ["request_approval", "request_user_input"])
async def test_invalid_arguments_on_a_gated_call_ask_no_human(action):
    received = []

    @tool
    def scale(replicas: int) -> str:
        received.append(replicas)
        return "ok"

    runner, provider = interactive(gate(action), approval_timeout_s=2, input_timeout_s=2)
    agent = Agent(
        "a", ScriptedModel([ToolCall("scale", {"replicas": "lots"}), "done"]), "i", tools=[scale]
    )
    async with asyncio.timeout(1):
        result = await runner.run(agent, user_message="x")

    assert result.state == "completed"
    assert received == []
    assert provider.pending() == []
    # The policy still saw and audited the call...
    assert one(result, "policy_decision").action == action
    # ...but no request was made and the run never paused.
    for absent in ("approval_requested", "user_input_requested", "run_paused"):
        assert absent not in types(result)
    assert "replicas" in tool_messages(result.messages)[0].content


async def test_a_tool_that_raises_becomes_an_error_result_and_the_run_goes_on():
    @tool
    def flaky() -> str:
        raise RuntimeError("disk on fire")

    agent = Agent("a", ScriptedModel([ToolCall("flaky", {}), "recovered"]), "i", tools=[flaky])
    result = await headless().run(agent, user_message="x")
    assert result.state == "completed"
    assert result.final_text == "recovered"
    [execution] = result.tool_executions
    assert execution.success is False and execution.executed is True
    assert "disk on fire" in execution.error
    assert "disk on fire" in tool_messages(result.messages)[0].content


async def test_sync_tools_run_in_a_worker_thread_and_inline_tools_on_the_loop():
    threads = {}

    @tool
    def worker() -> str:
        threads["worker"] = threading.get_ident()
        return "w"

    @tool(inline=True)
    def cheap() -> str:
        threads["inline"] = threading.get_ident()
        return "c"

    agent = Agent(
        "a",
        ScriptedModel([[ToolCall("worker", {}), ToolCall("cheap", {})], "done"]),
        "i",
        tools=[worker, cheap],
    )
    result = await headless().run(agent, user_message="x")
    assert result.state == "completed"
    loop_thread = threading.get_ident()
    assert threads["inline"] == loop_thread
    assert threads["worker"] != loop_thread


async def test_a_blocking_sync_tool_does_not_block_another_run():
    released = threading.Event()

    @tool
    def wait_for_release() -> bool:
        return released.wait(timeout=2.0)

    @tool
    async def release() -> str:
        released.set()
        return "released"

    blocked = Agent(
        "blocked",
        ScriptedModel([ToolCall("wait_for_release", {}), "done"]),
        "i",
        tools=[wait_for_release],
    )
    freer = Agent("freer", ScriptedModel([ToolCall("release", {}), "done"]), "i", tools=[release])
    runner = headless()

    async def later():
        await asyncio.sleep(0.02)
        return await runner.run(freer, user_message="x")

    first, second = await asyncio.gather(runner.run(blocked, user_message="x"), later())
    assert second.tool_executions[0].output == "released"
    assert first.tool_executions[0].output is True


async def test_unknown_tools_get_an_error_result():
    agent = Agent("a", ScriptedModel([ToolCall("nope", {"x": 1}), "done"]), "i")
    result = await headless().run(agent, user_message="x")
    assert result.state == "completed"
    [execution] = result.tool_executions
    assert execution.success is False
    assert "nope" in execution.error
    assert len(of_type(result, "policy_decision")) == 1
