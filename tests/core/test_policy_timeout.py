"""Async policy conditions cannot hang a run: RunnerConfig.policy_timeout_s bounds each
evaluation (failing closed, naming the rule) and max_run_time_s counts policy time."""

from __future__ import annotations

import asyncio
import math

import pytest
from hitl_support import Calls, drop_agent, headless, of_type, one, tool_messages

from afk.agents import PolicyEngine, PolicyEvent, PolicyRule
from afk.core import RunnerConfig
from afk.errors import ConfigurationError
from afk.llms import ToolCall

EVENT = PolicyEvent(tool_name="drop_table", tool_args={"name": "old_logs"})


async def hang(event: PolicyEvent) -> bool:
    await asyncio.Event().wait()  # nobody ever sets it
    return False


def pause_for(seconds: float):
    async def condition(event: PolicyEvent) -> bool:
        await asyncio.sleep(seconds)
        return False

    return condition


# -- the config field ------------------------------------------------------------------------
def test_policy_timeout_s_defaults_to_five_seconds():
    assert RunnerConfig().policy_timeout_s == 5.0
    assert RunnerConfig(policy_timeout_s=0.5).policy_timeout_s == 0.5


@pytest.mark.parametrize("value", [0, -1.0, math.nan, None, True, "5"])
def test_policy_timeout_s_must_be_a_positive_number(value):
    with pytest.raises(ConfigurationError) as info:
        RunnerConfig(policy_timeout_s=value)
    assert str(info.value) == f"RunnerConfig.policy_timeout_s must be a number > 0, got {value!r}"


# -- in a run --------------------------------------------------------------------------------
async def test_a_hung_async_condition_is_denied_naming_the_rule_and_the_run_goes_on():
    calls = Calls()
    runner = headless(
        PolicyEngine([PolicyRule("slow-check", action="allow", condition=hang)]),
        policy_timeout_s=0.05,
    )
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "completed", result.error
    assert calls.log == []  # nothing gated runs on a timeout
    decision = one(result, "policy_decision")
    expected = "policy rule 'slow-check' timed out after 0.05s: denied"
    assert (decision.action, decision.rule_id, decision.reason) == ("deny", "slow-check", expected)
    [message] = tool_messages(result.messages)
    assert expected in message.content


async def test_a_hung_condition_in_a_shadow_rule_is_reported_and_the_call_runs():
    calls = Calls()
    rule = PolicyRule("watch", action="deny", condition=hang, shadow=True, tool="drop_*")
    runner = headless(PolicyEngine([rule]), policy_timeout_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.names() == ["drop_table"]
    [shadow] = one(result, "policy_decision").shadow
    assert (shadow.rule_id, shadow.action) == ("watch", "deny")
    assert shadow.reason == "policy rule 'watch' timed out after 0.05s: denied"


async def test_with_max_run_time_s_a_hung_condition_fails_the_run_with_the_run_time_error():
    calls = Calls()
    runner = headless(
        PolicyEngine([PolicyRule("slow-check", action="allow", condition=hang)]),
        max_run_time_s=0.05,  # far below the default policy_timeout_s of 5s
    )
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "failed"
    assert calls.log == []
    assert "max_run_time_s=0.05 exceeded" in one(result, "run_failed").error
    assert result.events[-1].type == "run_failed"


async def test_the_agent_and_runner_engines_share_one_budget_per_evaluation():
    # Each condition alone is well within policy_timeout_s; together they are not.
    calls = Calls()
    agent_engine = PolicyEngine(
        [PolicyRule("agent-slow", action="allow", condition=pause_for(0.04))]
    )
    runner_engine = PolicyEngine(
        [PolicyRule("runner-slow", action="allow", condition=pause_for(0.04))]
    )
    runner = headless(runner_engine, policy_timeout_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(
            drop_agent(calls, policy_engine=agent_engine), user_message="drop"
        )
    decision = one(result, "policy_decision")
    assert decision.action == "deny"
    assert "timed out after 0.05s: denied" in decision.reason
    assert calls.log == []


async def test_every_evaluation_gets_a_fresh_budget():
    calls = Calls()
    turns = [[ToolCall("read_table", {"name": n}) for n in "abc"], "done"]
    rule = PolicyRule("slowish", action="deny", condition=pause_for(0.08))
    runner = headless(PolicyEngine([rule]), policy_timeout_s=0.2)  # < the 0.24s of all three
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls, turns=turns), user_message="read")
    assert [d.action for d in of_type(result, "policy_decision")] == ["allow"] * 3
    assert calls.names() == ["read_table"] * 3


async def test_a_hung_condition_on_a_model_call_denies_it_and_stops_the_run():
    calls = Calls()
    rule = PolicyRule("llm-check", action="allow", condition=hang, event_types="llm_before_execute")
    runner = headless(PolicyEngine([rule]), policy_timeout_s=0.05)
    async with asyncio.timeout(2):
        result = await runner.run(drop_agent(calls), user_message="drop")
    assert result.state == "stopped"
    assert of_type(result, "llm_called") == []
    decision = one(result, "policy_decision")
    assert (decision.action, decision.rule_id) == ("deny", "llm-check")


async def test_cancelling_a_run_while_a_condition_hangs_cancels_it():
    entered = asyncio.Event()

    async def stuck(event: PolicyEvent) -> bool:
        entered.set()
        return await hang(event)

    calls = Calls()
    runner = headless(PolicyEngine([PolicyRule("slow", action="allow", condition=stuck)]))
    handle = runner.run_stream(drop_agent(calls), user_message="drop")
    async with asyncio.timeout(2):
        await entered.wait()
        handle.cancel()
        result = await handle.result()
    assert result.state == "cancelled"  # not turned into a policy decision
    assert of_type(result, "policy_decision") == []
    assert calls.log == []


# -- the engine on its own -------------------------------------------------------------------
@pytest.mark.parametrize("declarative", [False, True])
async def test_aevaluate_with_timeout_s_denies_a_hung_condition(declarative):
    matcher = {"tool": "drop_*"} if declarative else {}
    engine = PolicyEngine([PolicyRule("slow", action="allow", condition=hang, **matcher)])
    async with asyncio.timeout(2):
        decision = await engine.aevaluate(EVENT, timeout_s=0.05)
    assert (decision.action, decision.rule_id, decision.matched_rules) == (
        "deny",
        "slow",
        ("slow",),
    )
    assert decision.reason == "policy rule 'slow' timed out after 0.05s: denied"


async def test_a_deadline_already_past_times_out_the_next_async_condition():
    engine = PolicyEngine([PolicyRule("slow", action="allow", condition=pause_for(0.01))])
    past = asyncio.get_running_loop().time() - 1
    decision = await engine.aevaluate(EVENT, timeout_s=0.5, deadline=past)
    assert decision.reason == "policy rule 'slow' timed out after 0.5s: denied"


async def test_a_condition_raising_its_own_timeout_error_is_reported_as_raising():
    async def flaky(event: PolicyEvent) -> bool:
        raise TimeoutError("lookup service")

    engine = PolicyEngine([PolicyRule("flaky", action="allow", condition=flaky)])
    decision = await engine.aevaluate(EVENT, timeout_s=5)
    assert decision.action == "deny"
    assert (
        decision.reason
        == "policy rule 'flaky' raised TimeoutError: lookup service (failing closed)"
    )


async def test_fast_async_conditions_are_unaffected_by_a_timeout():
    async def is_drop(event: PolicyEvent) -> bool:
        await asyncio.sleep(0)
        return event.tool_name == "drop_table"

    engine = PolicyEngine([PolicyRule("drops", action="deny", condition=is_drop, reason="no")])
    decision = await engine.aevaluate(EVENT, timeout_s=1)
    assert (decision.action, decision.reason) == ("deny", "no")


@pytest.mark.parametrize("bad", [0, -1, True, "1"])
async def test_aevaluate_refuses_a_bad_timeout(bad):
    with pytest.raises(ConfigurationError, match="timeout_s"):
        await PolicyEngine().aevaluate(EVENT, timeout_s=bad)


async def test_aexplain_with_timeout_s_says_the_condition_timed_out():
    engine = PolicyEngine([PolicyRule("slow", action="allow", condition=hang)])
    async with asyncio.timeout(2):
        explanation = await engine.aexplain(EVENT, timeout_s=0.05)
    assert explanation.decision.reason == "policy rule 'slow' timed out after 0.05s: denied"
    assert explanation.rules[0].why_not == "condition timed out after 0.05s"
