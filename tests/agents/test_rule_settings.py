"""PolicyRule.reason (text or a callable) and PolicyRule.allowed_decisions: validation at
construction, what a decision carries, and how policy files spell them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from afk.agents import Agent, PolicyDecision, PolicyEngine, PolicyEvent, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.errors import ConfigurationError
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

ALL = ("allow", "deny", "edit", "grant")


def refund(amount: int = 250, tool_name: str = "refund") -> PolicyEvent:
    return PolicyEvent(tool_name=tool_name, tool_args={"amount": amount})


def amount_reason(event: PolicyEvent) -> str:
    return f"refund of {event.tool_args['amount']} needs sign-off"


def engine_of(*rules: PolicyRule) -> PolicyEngine:
    return PolicyEngine(list(rules))


async def both(engine: PolicyEngine, event: PolicyEvent) -> PolicyDecision:
    """The decision, checking that evaluate and aevaluate agree on it."""
    decision = await engine.aevaluate(event)
    assert engine.evaluate(event) == decision
    return decision


# -- reason: what is accepted ----------------------------------------------------------------
@pytest.mark.parametrize("reason", [None, "", "needs sign-off", amount_reason])
def test_a_reason_may_be_text_a_callable_or_none(reason):
    assert PolicyRule("r", action="deny", reason=reason).reason is reason


@pytest.mark.parametrize(
    ("reason", "got"), [(5, "int"), (["a", "b"], "list"), ({"x": 1}, "dict"), (b"x", "bytes")]
)
def test_a_reason_of_another_type_is_refused_naming_the_rule_and_the_accepted_types(reason, got):
    with pytest.raises(ConfigurationError) as info:
        PolicyRule("refunds", action="request_approval", reason=reason)
    message = str(info.value)
    assert message.startswith("PolicyRule 'refunds': reason: must be a string, a callable")
    assert "or None" in message
    assert message.endswith(f"got {got}")


def test_a_policy_file_reason_must_be_a_string():
    data = {"version": 1, "rules": [{"id": "r", "action": "deny", "reason": 5}]}
    with pytest.raises(ConfigurationError) as info:
        PolicyEngine.from_dict(data, source="policy.yaml")
    assert str(info.value) == "policy.yaml: rules[0] (id 'r'): reason: must be a string, got 5"


# -- reason: a callable writes the decision's text -------------------------------------------
async def test_a_reason_callable_is_called_for_each_matching_call():
    seen: list[PolicyEvent] = []

    def reason(event: PolicyEvent) -> str:
        seen.append(event)
        return amount_reason(event)

    engine = engine_of(PolicyRule("big", action="request_approval", tool="refund", reason=reason))
    first, second = await both(engine, refund(250)), await both(engine, refund(900))
    assert first.reason == "refund of 250 needs sign-off"
    assert second.reason == "refund of 900 needs sign-off"
    assert seen[0].tool_args == {"amount": 250}
    assert (await both(engine, refund(5, tool_name="read"))).reason is None  # not matched


async def test_a_reason_callable_of_the_winning_rule_among_several_decides_the_text():
    engine = engine_of(
        PolicyRule("log", action="allow", reason=lambda e: "never asked"),
        PolicyRule("big", action="deny", condition=lambda e: True, reason=amount_reason),
        PolicyRule(
            "watch",
            action="request_approval",
            shadow=True,
            reason=lambda e: f"shadow {e.tool_name}",
        ),
    )
    decision = await both(engine, refund(300))
    assert (decision.rule_id, decision.reason) == ("big", "refund of 300 needs sign-off")
    [shadow] = decision.shadow
    assert (shadow.rule_id, shadow.reason) == ("watch", "shadow refund")


def test_an_empty_reason_text_falls_back_to_the_description_as_a_plain_reason_does():
    rule = PolicyRule("r", action="deny", description="no refunds", reason=lambda e: "")
    assert engine_of(rule).evaluate(refund()).reason == "no refunds"


def _raises(event: PolicyEvent) -> str:
    raise KeyError("amount")


async def _async_reason(event: PolicyEvent) -> str:
    return "never awaited"


@pytest.mark.parametrize(
    ("reason", "detail"),
    [
        (_raises, "raised KeyError: 'amount'"),
        (lambda e: 42, "returned int, not a str"),
        (lambda e: None, "returned NoneType, not a str"),
        (_async_reason, "returned coroutine, not a str"),
    ],
)
@pytest.mark.parametrize("action", ["allow", "request_approval"])
async def test_a_failing_reason_callable_denies_naming_the_rule(reason, detail, action):
    engine = engine_of(PolicyRule("refunds", action=action, reason=reason))
    decision = await both(engine, refund())
    assert (decision.action, decision.rule_id) == ("deny", "refunds")
    assert (
        decision.reason == f"policy rule 'refunds': its reason callable {detail} (failing closed)"
    )


async def test_a_failing_reason_callable_denies_even_beside_other_matching_rules():
    engine = engine_of(
        PolicyRule("other", action="allow"),
        PolicyRule("refunds", action="allow", priority=5, reason=lambda e: 1),
    )
    decision = await both(engine, refund())
    assert (decision.action, decision.rule_id) == ("deny", "refunds")


async def test_a_shadow_rule_whose_reason_callable_fails_is_reported_and_not_enforced():
    engine = engine_of(PolicyRule("watch", action="allow", shadow=True, reason=_raises))
    decision = await both(engine, refund())
    assert decision.action == "allow"
    [shadow] = decision.shadow
    assert (shadow.rule_id, shadow.action, shadow.would_change) == ("watch", "deny", True)
    assert "its reason callable raised KeyError" in (shadow.reason or "")


async def test_a_durable_run_stores_the_text_a_reason_callable_wrote(tmp_path: Path):
    ran: list[int] = []

    @tool
    def pay(amount: int) -> str:
        ran.append(amount)
        return "paid"

    rule = PolicyRule("pay", action="request_approval", tool="pay", reason=amount_reason)
    runner = Runner(
        engine_of(rule),
        config=RunnerConfig(interaction_mode="external"),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    agent = Agent("a", ScriptedModel([ToolCall("pay", {"amount": 70}), "done"]), "i", tools=[pay])
    async with runner:
        result = await runner.run(agent, user_message="pay")
        assert result.state == "paused", result.error
        [request] = await runner.pending_requests()
    assert request.reason == "refund of 70 needs sign-off"
    assert ran == []


# -- allowed_decisions -----------------------------------------------------------------------
def test_allowed_decisions_default_to_all_four_on_rules_and_decisions():
    assert PolicyRule("r", action="deny").allowed_decisions == ALL
    assert PolicyDecision(action="allow").allowed_decisions == ALL
    engine = engine_of(PolicyRule("r", action="request_approval"))
    assert engine.evaluate(refund()).allowed_decisions == ALL
    assert engine_of().evaluate(refund()).allowed_decisions == ALL


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (("allow", "deny"), ("allow", "deny")),
        (["deny"], ("deny",)),
        (["grant", "deny", "edit"], ("deny", "edit", "grant")),  # canonical order
        (["deny", "deny", "allow"], ("allow", "deny")),
    ],
)
async def test_a_rule_s_allowed_decisions_are_carried_on_its_decision(given, kept):
    rule = PolicyRule("big", action="request_approval", tool="refund", allowed_decisions=given)
    assert rule.allowed_decisions == kept
    engine = engine_of(rule, PolicyRule("low", action="request_approval", priority=-1))
    assert (await both(engine, refund())).allowed_decisions == kept
    assert (await both(engine, refund(tool_name="x"))).allowed_decisions == ALL  # "low" decided


@pytest.mark.parametrize(
    ("given", "detail"),
    [
        ("allow", "must be a non-empty list of allow, deny, edit, grant, got 'allow'"),
        ([], "must be a non-empty list of allow, deny, edit, grant, got []"),
        (None, "must be a non-empty list of allow, deny, edit, grant, got None"),
        (["allow", "approve"], "entries must be among allow, deny, edit, grant, got 'approve'"),
        ([1], "entries must be among allow, deny, edit, grant, got 1"),
    ],
)
def test_bad_allowed_decisions_name_the_rule_the_field_and_the_accepted_values(given, detail):
    with pytest.raises(ConfigurationError) as info:
        PolicyRule("big", action="request_approval", allowed_decisions=given)
    assert str(info.value) == f"PolicyRule 'big': allowed_decisions: {detail}"


@pytest.mark.parametrize("action", ["allow", "deny", "request_user_input"])
def test_allowed_decisions_go_only_with_request_approval(action):
    assert PolicyRule("r", action=action, allowed_decisions=list(ALL)).allowed_decisions == ALL
    with pytest.raises(ConfigurationError) as info:
        PolicyRule("r", action=action, allowed_decisions=["deny"])
    assert str(info.value) == (
        f"PolicyRule 'r': allowed_decisions: goes only with action 'request_approval', "
        f"not {action!r}"
    )


def test_a_failed_closed_decision_keeps_the_default_allowed_decisions():
    rule = PolicyRule(
        "big", action="request_approval", condition=_raises, allowed_decisions=["allow"]
    )
    decision = engine_of(rule).evaluate(refund())
    assert (decision.action, decision.allowed_decisions) == ("deny", ALL)


# -- allowed_decisions in policy files --------------------------------------------------------
POLICY = """\
version: 1
rules:
  - id: big-refunds
    tool: refund
    action: request_approval
    allowed_decisions: [allow, deny]
  - id: edits
    tool: update
    action: request_approval
    allowed_decisions: [edit, deny]
"""


def test_a_policy_file_sets_allowed_decisions(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    engine = PolicyEngine.from_file(path)
    assert engine.evaluate(refund()).allowed_decisions == ("allow", "deny")
    assert engine.evaluate(refund(tool_name="update")).allowed_decisions == ("deny", "edit")
    python = PolicyRule(
        "big-refunds", tool="refund", action="request_approval", allowed_decisions=("allow", "deny")
    )
    assert engine.rules[0] == python


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("[approve]", "must be a non-empty list of allow, deny, edit, grant, got ['approve']"),
        ("[]", "must be a non-empty list of allow, deny, edit, grant, got []"),
        ("allow", "must be a non-empty list of allow, deny, edit, grant, got 'allow'"),
    ],
)
def test_bad_allowed_decisions_in_a_file_name_file_rule_and_field(tmp_path: Path, value, detail):
    text = f"""\
    version: 1
    rules:
      - id: ok
        action: deny
      - id: big
        action: request_approval
        allowed_decisions: {value}
    """
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        PolicyEngine.from_file(path)
    assert str(info.value) == f"{path}: rules[1] (id 'big'): allowed_decisions: {detail}"


def test_allowed_decisions_on_another_action_in_a_file_names_file_rule_and_field():
    data = {"version": 1, "rules": [{"id": "d", "action": "deny", "allowed_decisions": ["deny"]}]}
    with pytest.raises(ConfigurationError) as info:
        PolicyEngine.from_dict(data, source="p.json")
    assert str(info.value) == (
        "p.json: rules[0] (id 'd'): allowed_decisions: goes only with action "
        "'request_approval', not 'deny'"
    )
