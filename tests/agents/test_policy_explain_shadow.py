"""engine.explain(): why each rule did or did not match; shadow rules and shadow engines."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from afk.agents import PolicyExplanation
from afk.agents.policy import (
    PolicyDecision,
    PolicyEngine,
    PolicyEvent,
    PolicyRule,
    ShadowResult,
    combine,
)


def call(tool_name: str | None = "refund", args: dict | None = None, **kw) -> PolicyEvent:
    return PolicyEvent(tool_name=tool_name, tool_args=args or {}, **kw)


def why(explanation: PolicyExplanation, rule_id: str) -> str | None:
    return next(r.why_not for r in explanation.rules if r.rule_id == rule_id)


# -- explain ---------------------------------------------------------------------------------
def test_explain_says_why_each_rule_did_not_match():
    def raises(event):
        raise ValueError("no amount")

    engine = PolicyEngine(
        [
            PolicyRule("drops", action="deny", tool="drop_*"),
            PolicyRule("big", action="request_approval", when={"amount": {"gt": 100}}),
            PolicyRule("off", action="deny", enabled=False),
            PolicyRule("model", action="deny", event_types="llm_before_execute"),
            PolicyRule("falsy", action="deny", condition=lambda e: False),
            PolicyRule("billing", action="deny", agent="billing-*"),
            PolicyRule("prod", action="deny", context={"env": "prod"}),
            PolicyRule("boom", action="deny", condition=raises, priority=-1),
        ]
    )
    explanation = engine.explain(call(args={"amount": 50}, agent_name="ops"))
    assert why(explanation, "drops") == "tool 'refund' does not match 'drop_*'"
    assert why(explanation, "big") == "when amount: 50 is not > 100"
    assert why(explanation, "off") == "disabled"
    assert why(explanation, "model") == ("event type tool_before_execute not in rule's event_types")
    assert why(explanation, "falsy") == "condition returned False"
    assert why(explanation, "billing") == "agent 'ops' does not match 'billing-*'"
    assert why(explanation, "prod") == "context env: missing"
    assert why(explanation, "boom") == "condition raised ValueError: no amount"
    # The raising rule decides (fail closed), exactly as evaluate would.
    assert explanation.decision.action == "deny"
    assert explanation.decision.rule_id == "boom"
    assert [r.rule_id for r in explanation.rules if r.decided] == ["boom"]


def test_explain_marks_the_deciding_rule_and_renders_a_table():
    engine = PolicyEngine(
        [
            PolicyRule("ask", action="request_approval", tool="refund", reason="finance"),
            PolicyRule("allow-all", action="allow"),
            PolicyRule("audit", action="deny", shadow=True),
        ]
    )
    explanation = engine.explain(call())
    assert explanation.decision == engine.evaluate(call())
    rows = {r.rule_id: r for r in explanation.rules}
    assert rows["ask"].decided and rows["ask"].matched
    assert rows["allow-all"].matched and not rows["allow-all"].decided
    assert rows["audit"].shadow and rows["audit"].matched
    text = str(explanation)
    assert "RULE" in text and "RESULT" in text
    assert "decision: request_approval by rule 'ask': finance" in text
    assert "shadow rule 'audit' would decide deny (would change the outcome)" in text


def test_explain_reports_the_default_action_when_nothing_matched():
    engine = PolicyEngine([PolicyRule("x", action="deny", tool="x")], default_action="deny")
    explanation = engine.explain(call())
    assert explanation.default_applied
    assert explanation.decision.action == "deny"
    assert "no rule matched: default for tool_before_execute" in str(explanation)
    assert "(no rules)" in str(PolicyEngine().explain(call()))


def test_explain_does_not_change_what_evaluate_decides():
    rng = random.Random(7)
    for _ in range(200):
        rules = [
            PolicyRule(
                f"r{i}",
                action=rng.choice(["allow", "deny", "request_approval"]),
                tool=rng.choice([None, "a*", "b", "*"]),
                when=rng.choice([None, {"n": {"gt": 2}}]),
                priority=rng.randint(0, 2),
                shadow=rng.random() < 0.3,
            )
            for i in range(rng.randint(0, 6))
        ]
        engine = PolicyEngine(rules, shadow=rng.random() < 0.2)
        event = call(rng.choice(["a", "ab", "b", "c"]), {"n": rng.randint(0, 4)})
        assert engine.explain(event).decision == engine.evaluate(event)


async def test_aexplain_awaits_async_conditions_and_explain_refuses_them():
    async def big(event):
        return event.tool_args["amount"] > 100

    engine = PolicyEngine([PolicyRule("big", action="deny", condition=big)])
    assert (await engine.aexplain(call(args={"amount": 500}))).decision.action == "deny"
    explanation = await engine.aexplain(call(args={"amount": 5}))
    assert why(explanation, "big") == "condition returned False"
    with pytest.raises(TypeError, match=r"'big'.*aexplain"):
        engine.explain(call(args={"amount": 500}))


# -- shadow rules ----------------------------------------------------------------------------
def test_a_shadow_rule_is_recorded_but_not_enforced():
    engine = PolicyEngine(
        [
            PolicyRule("allow-refunds", action="allow", tool="refund"),
            PolicyRule("new-deny", action="deny", tool="refund", shadow=True, reason="trial"),
        ]
    )
    decision = engine.evaluate(call())
    assert (decision.action, decision.rule_id, decision.matched_rules) == (
        "allow",
        "allow-refunds",
        ("allow-refunds",),
    )
    assert decision.shadow == (
        ShadowResult(action="deny", rule_id="new-deny", reason="trial", would_change=True),
    )
    assert engine.evaluate(call("other")).shadow == ()


def test_would_change_follows_priority_and_ties():
    engine = PolicyEngine(
        [
            PolicyRule("enforced", action="request_approval", priority=5),
            PolicyRule("lower", action="deny", priority=1, shadow=True),
            PolicyRule("tie-weaker", action="allow", priority=5, shadow=True),
            PolicyRule("tie-stronger", action="deny", priority=5, shadow=True),
            PolicyRule("same", action="request_approval", priority=9, shadow=True),
        ]
    )
    changes = {s.rule_id: s.would_change for s in engine.evaluate(call()).shadow}
    assert changes == {"same": False, "tie-weaker": False, "tie-stronger": True, "lower": False}


def test_a_raising_shadow_rule_does_not_fail_the_call_closed():
    def boom(event):
        raise RuntimeError("broken")

    engine = PolicyEngine([PolicyRule("trial", action="allow", condition=boom, shadow=True)])
    decision = engine.evaluate(call())
    assert decision.action == "allow"
    (result,) = decision.shadow
    assert (result.action, result.rule_id, result.would_change) == ("deny", "trial", True)
    assert "RuntimeError: broken" in (result.reason or "")


async def test_shadow_rules_in_aevaluate_and_covers():
    async def yes(event):
        return True

    engine = PolicyEngine(
        [
            PolicyRule(
                "m", action="deny", condition=yes, shadow=True, event_types="llm_before_execute"
            )
        ]
    )
    assert engine.covers("llm_before_execute")
    decision = await engine.aevaluate(PolicyEvent(event_type="llm_before_execute"))
    assert decision.action == "allow"
    assert [s.rule_id for s in decision.shadow] == ["m"]


# -- shadow engines --------------------------------------------------------------------------
def test_a_shadow_engine_allows_and_reports_what_it_would_have_done():
    engine = PolicyEngine(
        [
            PolicyRule("deny-refunds", action="deny", tool="refund", reason="no"),
            PolicyRule("trial", action="request_approval", tool="refund", shadow=True),
        ],
        shadow=True,
    )
    decision = engine.evaluate(call())
    assert (decision.action, decision.rule_id, decision.matched_rules) == ("allow", None, ())
    engine_result, rule_result = decision.shadow
    assert engine_result == ShadowResult(
        action="deny", rule_id="deny-refunds", reason="no", source="engine", would_change=True
    )
    assert rule_result.rule_id == "trial"
    quiet = PolicyEngine(default_action="deny", shadow=True).evaluate(call())
    assert quiet.action == "allow"
    assert quiet.shadow[0].action == "deny" and quiet.shadow[0].rule_id is None
    assert "shadow mode" in str(engine.explain(call()))


def test_combine_keeps_both_engines_shadow_results():
    enforced = PolicyEngine([PolicyRule("ask", action="request_approval")]).evaluate(call())
    trial = PolicyEngine([PolicyRule("deny", action="deny")], shadow=True).evaluate(call())
    merged = combine(trial, enforced)
    assert (merged.action, merged.rule_id) == ("request_approval", "ask")
    assert [s.rule_id for s in merged.shadow] == ["deny"]
    assert combine(enforced, PolicyDecision(action="allow")) is enforced


def test_shadow_results_are_json_friendly():
    engine = PolicyEngine([PolicyRule("t", action="deny", shadow=True)], shadow=True)
    data = dataclasses.asdict(engine.evaluate(call()))
    assert json.loads(json.dumps(data))["shadow"][0]["source"] == "engine"
    with pytest.raises(dataclasses.FrozenInstanceError):
        data_obj = engine.evaluate(call()).shadow[0]
        data_obj.action = "allow"  # type: ignore[misc]


async def test_a_shadow_engine_lets_the_tool_run_in_a_real_run():
    from afk.agents import Agent
    from afk.core import Runner, RunnerConfig
    from afk.llms import ScriptedModel, ToolCall
    from afk.tools import tool

    ran = []

    @tool
    def refund(amount: int) -> str:
        """Refund money."""
        ran.append(amount)
        return "ok"

    agent = Agent(
        "billing",
        ScriptedModel([ToolCall("refund", {"amount": 500}), "Done."]),
        "You refund.",
        tools=[refund],
    )
    shadow = PolicyEngine([PolicyRule("no-refunds", action="deny", tool="refund")], shadow=True)
    runner = Runner(policy_engine=shadow, config=RunnerConfig(interaction_mode="headless"))
    result = await runner.run(agent, user_message="refund it")
    assert ran == [500]
    decisions = [e for e in result.events if e.type == "policy_decision"]
    assert [d.action for d in decisions] == ["allow"]


def test_shadow_results_seen_before_a_failing_rule_are_kept_without_would_change():
    def boom(event):
        raise ValueError("x")

    engine = PolicyEngine(
        [
            PolicyRule("trial", action="allow", priority=9, shadow=True),
            PolicyRule("broken", action="allow", condition=boom),
        ]
    )
    decision = engine.evaluate(call())
    assert (decision.action, decision.rule_id) == ("deny", "broken")
    assert [(s.rule_id, s.would_change) for s in decision.shadow] == [("trial", False)]
    assert engine.explain(call()).decision == decision
