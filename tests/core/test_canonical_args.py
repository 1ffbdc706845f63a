"""Arguments in one canonical form: what a rule judges, an approver is shown, the events and the
record say, and the tool runs are one validated object with its defaults filled in.

Arguments canonical JSON cannot hold (NaN, ±Infinity, or a call an adapter could not read)
are answered with an error before anyone is asked and before anything runs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hitl_support import interactive, of_type, one, run_resolving, tool_messages, types

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import RunnerConfig, RunResult
from afk.errors import ConfigurationError
from afk.llms import AssistantMessage, FunctionModel, ScriptedModel, ToolCall
from afk.tools import tool

NAN_ERROR = "Error: invalid arguments: amount: {} is not allowed: send a finite number"


class Refunds:
    """A refund tool that records every execution, and the arguments every rule saw."""

    def __init__(self) -> None:
        self.ran: list[dict[str, Any]] = []
        self.seen_by_rules: list[dict[str, Any]] = []
        ran = self.ran

        @tool
        def refund(order: str, amount: int, notify_customer: bool = True) -> str:
            """Refund an order."""
            ran.append({"order": order, "amount": amount, "notify_customer": notify_customer})
            return f"refunded {amount} on {order}"

        @tool
        def refund_usd(order: str, amount: float) -> str:
            """Refund an amount in dollars."""
            ran.append({"order": order, "amount": amount})
            return f"refunded {amount} on {order}"

        self.tools = [refund, refund_usd]

    def policy(self, action: str = "request_approval") -> PolicyEngine:
        """Refunds over 100 need a human; the condition also records what the rule saw."""

        def seen(event: Any) -> bool:
            self.seen_by_rules.append(dict(event.tool_args))
            return True

        return PolicyEngine(
            [
                PolicyRule(
                    "big-refunds",
                    action=action,
                    tool="refund*",
                    when={"amount": {"gt": 100}},
                    condition=seen,
                    reason="Refunds over 100 need a human.",
                )
            ]
        )

    def agent(self, *turns: Any) -> Agent:
        return Agent("billing", ScriptedModel([*turns, "Done."]), "i", tools=self.tools)


async def run_and_approve(
    refunds: Refunds, call: ToolCall, decision: ApprovalDecision, **config: Any
) -> RunResult:
    runner, provider = interactive(refunds.policy(), approval_timeout_s=5, **config)
    return await run_resolving(
        runner,
        refunds.agent(call),
        provider,
        lambda request: provider.resolve_approval(request.request_id, decision),
    )


# -- 1. non-finite numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ("NaN", "NaN"),
    ],
)
@pytest.mark.parametrize("action", ["request_approval", "allow"])
async def test_a_non_finite_amount_is_refused_before_any_rule_human_or_tool(
    amount: Any, shown: str, action: str
) -> None:
    # NaN > 100 is false: without the check the rule lets the refund run unasked.
    refunds = Refunds()
    runner, provider = interactive(refunds.policy(action), approval_timeout_s=2)
    agent = refunds.agent(ToolCall("refund_usd", {"order": "A1", "amount": amount}))

    result = await runner.run(agent, user_message="refund")

    assert result.state == "completed"
    assert refunds.ran == [] and provider.pending() == []
    assert "approval_requested" not in types(result) and "tool_started" not in types(result)
    assert one(result, "policy_decision").tool_name == "refund_usd"  # still audited
    [message] = tool_messages(result.messages)
    assert message.is_error and message.content == NAN_ERROR.format(shown)
    [execution] = result.tool_executions
    assert not execution.executed and not execution.success and not execution.denied


async def test_a_function_model_returning_infinity_runs_nothing() -> None:
    refunds = Refunds()
    runner, _ = interactive(refunds.policy(), approval_timeout_s=2)

    def model(messages: list[Any], tools: list[Any]) -> Any:
        if len(tool_messages(messages)) == 0:
            return ToolCall("refund_usd", {"order": "A1", "amount": float("inf")})
        return "Done."

    agent = Agent("billing", FunctionModel(model), "i", tools=refunds.tools)
    result = await runner.run(agent, user_message="refund")

    assert refunds.ran == []
    assert tool_messages(result.messages)[0].content == NAN_ERROR.format("Infinity")


@pytest.mark.parametrize("action", ["request_approval", "allow"])
async def test_a_call_the_adapter_could_not_read_is_answered_with_its_error(action: str) -> None:
    refunds = Refunds()
    runner, provider = interactive(refunds.policy(action), approval_timeout_s=2)
    bad = ToolCall("refund", {}, "c1", error="amount: duplicate key: send each key once")

    result = await runner.run(refunds.agent(bad), user_message="refund")

    assert refunds.ran == [] and provider.pending() == []
    assert one(result, "policy_decision").tool_call_id == "c1"
    [message] = tool_messages(result.messages)
    assert message.content == "Error: invalid arguments: amount: duplicate key: send each key once"


# -- 3. the approver sees what runs ----------------------------------------------------------


async def test_defaults_are_filled_in_for_rules_approver_events_record_and_execution() -> None:
    refunds = Refunds()
    call = ToolCall("refund", {"order": "A1", "amount": 250}, "c1")
    canonical = {"order": "A1", "amount": 250, "notify_customer": True}

    result = await run_and_approve(refunds, call, ApprovalDecision(kind="allow"))

    assert refunds.seen_by_rules == [canonical]
    assert one(result, "approval_requested").request.tool_args == canonical
    assert one(result, "tool_started").args == canonical
    assert result.tool_executions[0].args == canonical
    assert refunds.ran == [canonical]
    # The model's own call is replayed to the provider as the model made it.
    [turn] = [m for m in result.messages if isinstance(m, AssistantMessage) and m.tool_calls]
    assert turn.tool_calls[0].arguments == {"order": "A1", "amount": 250}


async def test_rules_judge_the_coerced_value_and_strings_in_one_unicode_form() -> None:
    refunds = Refunds()
    # "250" is what the tool will receive as 250; "café" typed as e + combining accent.
    call = ToolCall("refund", {"order": "cafe\u0301", "amount": "250"}, "c1")

    result = await run_and_approve(refunds, call, ApprovalDecision(kind="allow"))

    canonical = {"order": "caf\u00e9", "amount": 250, "notify_customer": True}
    assert refunds.seen_by_rules == [canonical]
    assert one(result, "policy_decision").action == "request_approval"
    assert one(result, "approval_requested").request.tool_args == canonical
    assert refunds.ran == [canonical]


# -- 5. what the reviewer did reaches the model ----------------------------------------------


async def test_the_model_is_told_the_arguments_a_reviewer_changed_and_why() -> None:
    refunds = Refunds()
    decision = ApprovalDecision(
        kind="allow", updated_tool_args={"order": "A1", "amount": 50}, reason="over the limit"
    )

    result = await run_and_approve(
        refunds, ToolCall("refund", {"order": "A1", "amount": 250}), decision
    )

    ran = {"amount": 50, "notify_customer": True, "order": "A1"}
    assert refunds.ran == [ran]
    assert result.tool_executions[0].args == ran
    [message] = tool_messages(result.messages)
    assert message.content == (
        f"Note: a reviewer changed the arguments to {json.dumps(ran)}. Reason: over the limit\n"
        "refunded 50 on A1"
    )
    assert not message.is_error


async def test_an_edit_without_a_reason_is_still_announced() -> None:
    refunds = Refunds()
    decision = ApprovalDecision(kind="allow", updated_tool_args={"order": "A1", "amount": 50})

    result = await run_and_approve(
        refunds, ToolCall("refund", {"order": "A1", "amount": 250}), decision
    )

    assert tool_messages(result.messages)[0].content == (
        'Note: a reviewer changed the arguments to {"amount": 50, "notify_customer": true, '
        '"order": "A1"}\nrefunded 50 on A1'
    )


async def test_a_reviewer_editing_in_a_non_finite_number_is_refused_and_runs_nothing() -> None:
    from afk.errors import InvalidDecisionError

    refunds = Refunds()
    decision = ApprovalDecision(
        kind="allow", updated_tool_args={"order": "A1", "amount": float("nan")}
    )
    refused: list[Exception] = []

    def answer(request: Any) -> None:
        try:
            provider.resolve_approval(request.request_id, decision)
        except InvalidDecisionError as exc:  # refused when submitted; the request stays open
            refused.append(exc)

    runner, provider = interactive(refunds.policy(), approval_timeout_s=0.3)
    call = ToolCall("refund_usd", {"order": "A1", "amount": 250.0})
    result = await run_resolving(runner, refunds.agent(call), provider, answer)

    assert refunds.ran == [] and refused and "amount" in str(refused[0])
    [execution] = result.tool_executions
    assert not execution.executed and execution.decided_by == "timeout"


@pytest.mark.parametrize(
    ("reason", "content"),
    [
        ("customer is a VIP", "Approved by a reviewer: customer is a VIP\nrefunded 250 on A1"),
        (None, "refunded 250 on A1"),
    ],
)
async def test_an_approvers_reason_on_a_plain_allow_reaches_the_model(
    reason: str | None, content: str
) -> None:
    refunds = Refunds()
    decision = ApprovalDecision(kind="allow", reason=reason)

    result = await run_and_approve(
        refunds, ToolCall("refund", {"order": "A1", "amount": 250}), decision
    )

    assert tool_messages(result.messages)[0].content == content


async def test_a_fallback_allow_is_not_presented_as_a_reviewer() -> None:
    refunds = Refunds()
    runner, _ = interactive(refunds.policy(), approval_timeout_s=0.05, approval_fallback="allow")

    result = await runner.run(
        refunds.agent(ToolCall("refund", {"order": "A1", "amount": 250})), user_message="go"
    )

    assert tool_messages(result.messages)[0].content == "refunded 250 on A1"


# -- a cap on open requests ------------------------------------------------------------------


async def test_calls_past_the_open_request_cap_are_denied_with_a_reason() -> None:
    refunds = Refunds()
    calls = [ToolCall("refund", {"order": f"A{i}", "amount": 500}, f"c{i}") for i in range(3)]
    runner, provider = interactive(refunds.policy(), approval_timeout_s=5, max_open_requests=2)

    result = await run_resolving(
        runner,
        refunds.agent(calls),
        provider,
        lambda r: provider.resolve_approval(r.request_id, ApprovalDecision(kind="allow")),
        count=2,
    )

    assert len(of_type(result, "approval_requested")) == 2
    assert [r["order"] for r in refunds.ran] == ["A0", "A1"]
    third = tool_messages(result.messages)[2]
    assert third.content == (
        "Tool call denied: too many open approval requests in this run (cap 2): wait for the "
        "open ones to be decided before asking for more"
    )
    assert result.tool_executions[2].denied and not result.tool_executions[2].executed


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "5", None])
def test_max_open_requests_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"RunnerConfig\.max_open_requests must be an int >= 1"
    ):
        RunnerConfig(max_open_requests=bad)
    assert RunnerConfig().max_open_requests == 50
