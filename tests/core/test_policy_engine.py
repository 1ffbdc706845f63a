"""PolicyRule, PolicyEvent and PolicyEngine: how rules are written and how a decision is reached."""

from __future__ import annotations

import dataclasses

import pytest
from hitl_support import Calls, drop_agent, headless, of_type, one, tool_messages

from afk.agents import PolicyDecision, PolicyEngine, PolicyEvent, PolicyRule
from afk.errors import AfkError, ConfigurationError
from afk.llms import ToolCall


def drop_event(**overrides) -> PolicyEvent:
    fields = dict(
        event_type="tool_before_execute",
        run_id="run_1",
        thread_id="t1",
        step=1,
        agent_name="db-agent",
        tool_name="drop_table",
        tool_args={"name": "old_logs"},
        tool_call_id="call_1",
        context={"tenant": "acme"},
    )
    fields.update(overrides)
    return PolicyEvent(**fields)


# -- writing rules -------------------------------------------------------------------------


def test_rule_defaults():
    rule = PolicyRule("r", action="allow")
    assert rule.description == ""
    assert rule.condition is None
    assert rule.reason is None
    assert rule.priority == 0
    assert rule.enabled is True
    assert rule.event_types == ("tool_before_execute",)
    assert rule.stop_run is False
    assert rule.input_target_arg is None


def test_everything_after_rule_id_is_keyword_only():
    with pytest.raises(TypeError):
        PolicyRule("r", "deny")  # type: ignore[misc]


@pytest.mark.parametrize("action", ["allow", "deny", "request_approval", "request_user_input"])
def test_the_four_actions_are_accepted(action):
    assert PolicyRule("r", action=action).action == action


def test_an_unknown_action_names_the_rule_and_the_accepted_values():
    with pytest.raises(ConfigurationError) as info:
        PolicyRule("block-it", action="block")
    message = str(info.value)
    assert "block-it" in message
    for accepted in ("allow", "deny", "request_approval", "request_user_input"):
        assert accepted in message
    assert isinstance(info.value, AfkError)


def test_stop_run_goes_only_with_deny():
    assert PolicyRule("r", action="deny", stop_run=True).stop_run is True
    for action in ("allow", "request_approval", "request_user_input"):
        with pytest.raises(ConfigurationError, match="stop_run"):
            PolicyRule("r", action=action, stop_run=True)


def test_duplicate_rule_ids_are_refused():
    with pytest.raises(ConfigurationError, match="dup"):
        PolicyEngine(rules=[PolicyRule("dup", action="allow"), PolicyRule("dup", action="deny")])


def test_an_unknown_default_action_is_refused():
    with pytest.raises(ConfigurationError):
        PolicyEngine(rules=[], default_action="maybe")


# -- the event a condition sees --------------------------------------------------------------


def test_policy_event_is_built_by_keyword_and_its_context_is_read_only():
    event = drop_event()
    assert event.tool_name == "drop_table"
    assert event.tool_args == {"name": "old_logs"}
    assert event.tool_call_id == "call_1"
    assert event.thread_id == "t1"
    assert event.context["tenant"] == "acme"
    with pytest.raises(TypeError):
        event.context["tenant"] = "evil"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.tool_name = "read_table"  # type: ignore[misc]


# -- evaluation ------------------------------------------------------------------------------


def test_no_rule_matches_gives_the_default_action():
    engine = PolicyEngine(rules=[PolicyRule("never", action="deny", condition=lambda e: False)])
    decision = engine.evaluate(drop_event())
    assert isinstance(decision, PolicyDecision)
    assert decision.action == "allow"
    assert decision.rule_id is None
    assert decision.matched_rules == ()
    strict = PolicyEngine(rules=[], default_action="deny")
    assert strict.evaluate(drop_event()).action == "deny"


def test_a_rule_without_condition_matches_everything_in_scope():
    engine = PolicyEngine(rules=[PolicyRule("all", action="request_approval", reason="why")])
    decision = engine.evaluate(drop_event())
    assert decision.action == "request_approval"
    assert decision.rule_id == "all"
    assert decision.reason == "why"
    assert decision.matched_rules == ("all",)
    # ...but only in scope: model-call events are not tool events.
    assert engine.evaluate(drop_event(event_type="llm_before_execute")).action == "allow"


def test_disabled_rules_do_not_match():
    engine = PolicyEngine(rules=[PolicyRule("off", action="deny", enabled=False)])
    assert engine.evaluate(drop_event()).action == "allow"


def test_highest_priority_decides_even_against_a_more_restrictive_rule():
    engine = PolicyEngine(
        rules=[
            PolicyRule("deny-all", action="deny", priority=0),
            PolicyRule("allow-drops", action="allow", priority=10),
        ]
    )
    decision = engine.evaluate(drop_event())
    assert decision.action == "allow"
    assert decision.rule_id == "allow-drops"
    assert set(decision.matched_rules) == {"deny-all", "allow-drops"}


@pytest.mark.parametrize(
    ("actions", "winner"),
    [
        (["allow", "deny"], "deny"),
        (["request_approval", "deny"], "deny"),
        (["request_user_input", "request_approval"], "request_approval"),
        (["allow", "request_user_input"], "request_user_input"),
        (["deny", "request_approval", "request_user_input", "allow"], "deny"),
    ],
)
def test_a_priority_tie_goes_to_the_most_restrictive_action(actions, winner):
    rules = [PolicyRule(f"r{i}", action=a, priority=5) for i, a in enumerate(actions)]
    for order in (rules, list(reversed(rules))):
        decision = PolicyEngine(rules=order).evaluate(drop_event())
        assert decision.action == winner
        assert decision.rule_id == f"r{actions.index(winner)}"


def test_conditions_see_the_event_and_sync_and_async_evaluation_agree():
    seen = []

    def is_drop(event):
        seen.append(event)
        return event.tool_name == "drop_table" and event.context.get("tenant") == "acme"

    engine = PolicyEngine(rules=[PolicyRule("drops", action="deny", condition=is_drop)])
    assert engine.evaluate(drop_event()).action == "deny"
    assert engine.evaluate(drop_event(tool_name="read_table")).action == "allow"
    assert seen[0].tool_args == {"name": "old_logs"}


async def test_aevaluate_awaits_async_conditions():
    async def is_drop(event):
        return event.tool_name == "drop_table"

    engine = PolicyEngine(rules=[PolicyRule("async-drops", action="deny", condition=is_drop)])
    assert (await engine.aevaluate(drop_event())).action == "deny"
    assert (await engine.aevaluate(drop_event(tool_name="read_table"))).action == "allow"


def test_sync_evaluate_with_an_async_condition_raises_type_error_naming_the_rule():
    async def is_drop(event):
        return True

    engine = PolicyEngine(rules=[PolicyRule("async-rule", action="deny", condition=is_drop)])
    with pytest.raises(TypeError, match="async-rule"):
        engine.evaluate(drop_event())


@pytest.mark.parametrize("use_async", [False, True])
async def test_a_condition_that_raises_denies_naming_the_rule_and_the_error(use_async):
    def broken(event):
        raise RuntimeError("lookup service down")

    async def broken_async(event):
        raise RuntimeError("lookup service down")

    engine = PolicyEngine(
        rules=[
            PolicyRule("flaky", action="allow", condition=broken_async if use_async else broken),
        ]
    )
    decision = await engine.aevaluate(drop_event())
    if not use_async:
        assert engine.evaluate(drop_event()) == decision
    assert decision.action == "deny"
    assert decision.rule_id == "flaky"
    assert "flaky" in decision.reason
    assert "lookup service down" in decision.reason


# -- the engine inside a run -------------------------------------------------------------------


async def test_a_raising_rule_in_a_run_denies_the_call_and_the_run_goes_on():
    def broken(event):
        raise KeyError("owner")

    calls = Calls()
    runner = headless(
        PolicyEngine(rules=[PolicyRule("owner-check", action="allow", condition=broken)])
    )
    result = await runner.run(drop_agent(calls), user_message="drop")

    assert result.state == "completed"
    assert calls.log == []
    decision = one(result, "policy_decision")
    assert decision.action == "deny"
    assert decision.rule_id == "owner-check"
    assert "owner-check" in decision.reason and "owner" in decision.reason
    [message] = tool_messages(result.messages)
    assert "owner-check" in message.content


async def test_a_condition_mutating_tool_args_does_not_change_what_executes():
    def vandal(event):
        event.tool_args["name"] = "production"
        return False

    calls = Calls()
    runner = headless(PolicyEngine(rules=[PolicyRule("vandal", action="deny", condition=vandal)]))
    result = await runner.run(drop_agent(calls), user_message="drop")

    assert calls.log == [("drop_table", {"name": "old_logs"})]
    assert result.tool_executions[0].args == {"name": "old_logs"}
    assert one(result, "tool_started").args == {"name": "old_logs"}


async def test_conditions_receive_run_details_and_a_read_only_context():
    seen = []

    def spy(event):
        seen.append(event)
        return False

    calls = Calls()
    agent = drop_agent(calls)
    runner = headless(PolicyEngine(rules=[PolicyRule("spy", action="deny", condition=spy)]))
    result = await runner.run(
        agent, user_message="drop", context={"tenant": "acme"}, thread_id="thread-7"
    )

    [event] = seen
    assert event.event_type == "tool_before_execute"
    assert event.run_id == result.run_id
    assert event.thread_id == "thread-7"
    assert event.step == 1
    assert event.agent_name == "db-agent"
    assert event.tool_name == "drop_table"
    assert event.tool_args == {"name": "old_logs"}
    assert event.tool_call_id == result.tool_executions[0].tool_call_id
    assert event.context["tenant"] == "acme"
    with pytest.raises(TypeError):
        event.context["tenant"] = "other"  # type: ignore[index]


async def test_the_agent_engine_and_the_runner_engine_are_both_evaluated():
    asked = []

    def note(name):
        def condition(event):
            asked.append(name)
            return True

        return condition

    calls = Calls()
    agent = drop_agent(
        calls,
        policy_engine=PolicyEngine(
            rules=[PolicyRule("agent-deny", action="deny", condition=note("agent"))]
        ),
    )
    runner = headless(
        PolicyEngine(rules=[PolicyRule("runner-allow", action="allow", condition=note("runner"))])
    )
    result = await runner.run(agent, user_message="drop")

    assert sorted(asked) == ["agent", "runner"]
    assert calls.log == []
    decision = one(result, "policy_decision")
    assert decision.action == "deny"
    assert decision.rule_id == "agent-deny"


@pytest.mark.parametrize(
    ("runner_action", "agent_action", "expected"),
    [
        ("allow", "request_approval", "request_approval"),
        ("request_approval", "allow", "request_approval"),
        ("request_user_input", "request_approval", "request_approval"),
        ("deny", "request_approval", "deny"),
    ],
)
async def test_the_more_restrictive_engine_wins(runner_action, agent_action, expected):
    calls = Calls()
    agent = drop_agent(
        calls, policy_engine=PolicyEngine(rules=[PolicyRule("agent", action=agent_action)])
    )
    runner = headless(PolicyEngine(rules=[PolicyRule("runner", action=runner_action)]))
    result = await runner.run(agent, user_message="drop")
    assert one(result, "policy_decision").action == expected
    assert calls.log == []


async def test_a_stop_run_deny_in_the_agent_engine_stops_even_when_the_runner_engine_also_denies():
    """Both engines deny; only the agent's rule says stop_run. The run must still stop."""
    calls = Calls()
    agent = drop_agent(
        calls,
        policy_engine=PolicyEngine(rules=[PolicyRule("agent-stop", action="deny", stop_run=True)]),
    )
    runner = headless(PolicyEngine(rules=[PolicyRule("runner-deny", action="deny")]))
    result = await runner.run(agent, user_message="drop")
    assert calls.log == []
    assert result.state == "stopped"


async def test_a_matching_stop_run_deny_rule_stops_even_beside_a_plain_deny_of_equal_priority():
    calls = Calls()
    runner = headless(
        PolicyEngine(
            rules=[
                PolicyRule("plain-deny", action="deny"),
                PolicyRule("stop-deny", action="deny", stop_run=True),
            ]
        )
    )
    result = await runner.run(drop_agent(calls), user_message="drop")
    assert calls.log == []
    assert result.state == "stopped"


async def test_every_tool_call_is_seen_even_unknown_tools():
    seen = []

    def spy(event):
        seen.append(event.tool_name)
        return False

    calls = Calls()
    agent = drop_agent(
        calls,
        turns=[[ToolCall("read_table", {"name": "a"}), ToolCall("launch_rockets", {})], "ok"],
    )
    result = await headless(
        PolicyEngine(rules=[PolicyRule("spy", action="deny", condition=spy)])
    ).run(agent, user_message="go")
    assert seen == ["read_table", "launch_rockets"]
    assert [e.tool_name for e in of_type(result, "policy_decision")] == [
        "read_table",
        "launch_rockets",
    ]
    unknown = result.tool_executions[1]
    assert unknown.success is False and "launch_rockets" in unknown.error


async def test_a_shadow_rule_lets_the_tool_run_and_the_event_records_what_it_would_have_done() -> (
    None
):
    from afk.agents import Agent, PolicyEngine, PolicyRule
    from afk.core import Runner, event_from_dict, event_to_dict
    from afk.llms import ScriptedModel, ToolCall
    from afk.tools import tool

    ran: list[str] = []

    @tool
    def send_email(to: str) -> str:
        ran.append(to)
        return "sent"

    engine = PolicyEngine(
        [PolicyRule("no-competitors", tool="send_email", action="deny", shadow=True)]
    )
    agent = Agent(
        "mailer",
        ScriptedModel([ToolCall("send_email", {"to": "x@rival.com"}), "ok"]),
        "mail",
        tools=[send_email],
    )
    result = await Runner(engine).run(agent, user_message="go")
    assert ran == ["x@rival.com"]  # not enforced
    [decision] = [e for e in result.events if e.type == "policy_decision"]
    assert decision.action == "allow"  # type: ignore[union-attr]
    [would] = decision.shadow  # type: ignore[union-attr]
    assert (would.rule_id, would.action, would.would_change) == ("no-competitors", "deny", True)
    assert event_from_dict(event_to_dict(decision)) == decision
