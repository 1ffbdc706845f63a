"""Rules listing llm_before_execute gate the model calls themselves."""

from __future__ import annotations

import asyncio

import pytest
from hitl_support import headless, interactive, of_type, one, run_resolving, types

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule, UserInputDecision
from afk.llms import FunctionModel, UserMessage


class CountingModel:
    def __init__(self, reply: str = "hello") -> None:
        self.calls: list[list] = []
        self.reply = reply

    async def complete(self, messages, tools):
        from afk.llms import ModelResponse

        self.calls.append(list(messages))
        return ModelResponse(text=self.reply)


def llm_rule(action: str, **kwargs) -> PolicyEngine:
    kwargs.setdefault("reason", f"model calls: {action}")
    return PolicyEngine(
        rules=[PolicyRule("gate-llm", action=action, event_types=("llm_before_execute",), **kwargs)]
    )


async def test_a_deny_rule_on_model_calls_stops_the_run_before_the_model_is_called():
    model = CountingModel()
    result = await headless(llm_rule("deny")).run(Agent("a", model, "i"), user_message="x")
    assert result.state == "stopped"
    assert model.calls == []
    assert "llm_called" not in types(result)
    decision = one(result, "policy_decision")
    assert decision.event_type == "llm_before_execute"
    assert (decision.tool_name, decision.tool_call_id) == (None, None)
    assert (decision.action, decision.rule_id) == ("deny", "gate-llm")
    last = result.events[-1]
    assert (last.type, last.state) == ("run_completed", "stopped")


async def test_model_call_events_carry_no_tool_fields():
    seen = []

    def spy(event):
        seen.append(event)
        return False

    model = CountingModel()
    result = await headless(llm_rule("deny", condition=spy)).run(
        Agent("a", model, "i"), user_message="x", thread_id="t"
    )
    assert result.state == "completed"
    [event] = seen
    assert event.event_type == "llm_before_execute"
    assert event.tool_name is None
    assert event.tool_call_id is None
    assert not event.tool_args
    assert (event.step, event.agent_name, event.thread_id) == (1, "a", "t")


async def test_tool_rules_do_not_gate_model_calls():
    model = CountingModel()
    engine = PolicyEngine(rules=[PolicyRule("deny-tools", action="deny")])
    result = await headless(engine).run(Agent("a", model, "i"), user_message="x")
    assert result.state == "completed"
    assert len(model.calls) == 1
    assert "policy_decision" not in types(result)


async def test_approval_of_a_model_call_by_a_human_lets_it_run():
    model = CountingModel()
    runner, provider = interactive(llm_rule("request_approval"))
    captured = []

    def approve(request):
        captured.append(request)
        provider.resolve_approval(request.request_id, ApprovalDecision(kind="allow"))

    result = await run_resolving(runner, Agent("a", model, "i"), provider, approve)
    assert result.state == "completed"
    assert len(model.calls) == 1
    [request] = captured
    assert (request.tool_name, request.tool_call_id, request.step) == (None, None, 1)
    assert types(result)[:9] == [
        "run_started",
        "step_started",
        "policy_decision",
        "approval_requested",
        "run_paused",
        "approval_resolved",
        "run_resumed",
        "llm_called",
        "llm_completed",
    ]


@pytest.mark.parametrize("how", ["human", "human-stop", "timeout"])
async def test_any_deny_of_a_model_call_in_interactive_mode_stops_the_run(how):
    model = CountingModel()
    runner, provider = interactive(llm_rule("request_approval"), approval_timeout_s=0.05)
    if how == "timeout":
        async with asyncio.timeout(2):
            result = await runner.run(Agent("a", model, "i"), user_message="x")
    else:
        decision = ApprovalDecision(kind="deny", reason="no", stop_run=how == "human-stop")
        result = await run_resolving(
            runner,
            Agent("a", model, "i"),
            provider,
            lambda r: provider.resolve_approval(r.request_id, decision),
        )
    assert result.state == "stopped"
    assert model.calls == []
    assert one(result, "approval_resolved").decided_by == (
        "timeout" if how == "timeout" else "human"
    )


@pytest.mark.parametrize(
    ("fallback", "state", "called"), [("deny", "stopped", 0), ("allow", "completed", 1)]
)
async def test_headless_model_call_approval_uses_the_fallback(fallback, state, called):
    model = CountingModel()
    runner = headless(llm_rule("request_approval"), approval_fallback=fallback)
    result = await runner.run(Agent("a", model, "i"), user_message="x")
    assert result.state == state
    assert len(model.calls) == called
    assert one(result, "approval_resolved").decided_by == "fallback"


async def test_headless_model_call_input_with_deny_fallback_stops_the_run():
    model = CountingModel()
    result = await headless(llm_rule("request_user_input")).run(
        Agent("a", model, "i"), user_message="x"
    )
    assert result.state == "stopped"
    assert model.calls == []


async def test_user_input_for_a_model_call_is_added_as_a_user_message_before_the_call():
    seen: list[list] = []

    def model(messages, tools):
        seen.append(messages)
        return "answered"

    runner, provider = interactive(llm_rule("request_user_input", reason="Anything to add?"))
    captured = []

    def answer(request):
        captured.append(request)
        provider.resolve_input(
            request.request_id, UserInputDecision(kind="allow", value="Use staging, not prod.")
        )

    result = await run_resolving(
        runner, Agent("a", FunctionModel(model), "i"), provider, answer, user_message="deploy"
    )
    assert result.state == "completed"
    assert captured[0].prompt == "Anything to add?"
    [messages] = seen
    assert messages[-2:] == [
        UserMessage(content="deploy"),
        UserMessage(content="Use staging, not prod."),
    ]
    assert one(result, "user_input_resolved").decided_by == "human"


async def test_every_model_call_is_gated_and_audited():
    from afk.llms import ScriptedModel, ToolCall
    from afk.tools import tool

    @tool
    def noop() -> str:
        return "ok"

    agent = Agent(
        "a", ScriptedModel([ToolCall("noop", {}), ToolCall("noop", {}), "done"]), "i", tools=[noop]
    )
    result = await headless(llm_rule("allow")).run(agent, user_message="x")
    assert result.state == "completed"
    llm_decisions = [
        e for e in of_type(result, "policy_decision") if e.event_type == "llm_before_execute"
    ]
    assert [e.step for e in llm_decisions] == [1, 2, 3]
