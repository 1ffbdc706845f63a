"""Run limits: max_steps counts model calls; max_run_time_s counts active time only."""

from __future__ import annotations

import asyncio
import threading

from hitl_support import gate, headless, interactive, of_type, one

from afk.agents import Agent, ApprovalDecision
from afk.core import RunnerConfig
from afk.llms import FunctionModel, ScriptedModel, ToolCall
from afk.tools import tool


@tool
def tick() -> str:
    return "tick"


def looping_agent(max_steps: int) -> tuple[Agent, list]:
    model_calls: list[int] = []

    def model(messages, tools):
        model_calls.append(1)
        return ToolCall("tick", {})

    return Agent(
        "looper", FunctionModel(model), "i", tools=[tick], max_steps=max_steps
    ), model_calls


async def test_reaching_max_steps_fails_the_run_saying_so():
    agent, model_calls = looping_agent(3)
    result = await headless().run(agent, user_message="x")
    assert result.state == "failed"
    assert len(model_calls) == 3
    assert len(of_type(result, "llm_called")) == 3
    failed = one(result, "run_failed")
    assert "max_steps" in failed.error
    assert result.events[-1].type == "run_failed"


async def test_finishing_on_the_last_allowed_step_completes():
    agent = Agent(
        "a",
        ScriptedModel([ToolCall("tick", {}), ToolCall("tick", {}), "done"]),
        "i",
        tools=[tick],
        max_steps=3,
    )
    result = await headless().run(agent, user_message="x")
    assert result.state == "completed"
    assert result.final_text == "done"


async def test_max_steps_defaults_to_twenty():
    agent, model_calls = looping_agent(20)
    assert Agent("a", ScriptedModel([]), "i").max_steps == 20
    result = await headless().run(agent, user_message="x")
    assert result.state == "failed"
    assert len(model_calls) == 20


async def test_exceeding_max_run_time_fails_the_run_naming_the_limit():
    async def slow(messages, tools):
        await asyncio.sleep(1)
        return "too late"

    runner = headless(max_run_time_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(Agent("a", FunctionModel(slow), "i"), user_message="x")
    assert result.state == "failed"
    failed = one(result, "run_failed")
    assert "max_run_time_s" in failed.error
    assert result.events[-1].type == "run_failed"


async def test_a_slow_tool_counts_towards_max_run_time():
    @tool
    async def crunch() -> str:
        await asyncio.sleep(1)
        return "crunched"

    agent = Agent("a", ScriptedModel([ToolCall("crunch", {}), "done"]), "i", tools=[crunch])
    async with asyncio.timeout(2):
        result = await headless(max_run_time_s=0.05).run(agent, user_message="x")
    assert result.state == "failed"
    assert "max_run_time_s" in one(result, "run_failed").error


async def test_waiting_for_a_human_does_not_count_towards_max_run_time():
    ran = []

    @tool
    def drop_table(name: str) -> str:
        ran.append(name)
        return "dropped"

    agent = Agent(
        "a", ScriptedModel([ToolCall("drop_table", {"name": "t"}), "done"]), "i", tools=[drop_table]
    )
    runner, provider = interactive(gate("request_approval"), max_run_time_s=0.2)
    handle = runner.run_stream(agent, user_message="x")

    def slow_human():
        import time

        while not provider.pending():
            time.sleep(0.001)
        time.sleep(0.5)  # well past the whole run's budget
        provider.resolve_approval(provider.pending()[0].request_id, ApprovalDecision(kind="allow"))

    thread = threading.Thread(target=slow_human)
    thread.start()
    async with asyncio.timeout(3):
        result = await handle.result()
    thread.join()
    assert result.state == "completed", result.error
    assert ran == ["t"]


def test_max_run_time_is_optional():
    assert RunnerConfig(max_run_time_s=None).max_run_time_s is None
    assert RunnerConfig(max_run_time_s=1.5).max_run_time_s == 1.5
