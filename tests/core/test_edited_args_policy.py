"""What a human changed meets the policy before it runs: arguments edited on approval, or an
answer filled into an argument, that a deny rule matches are denied, as the model's own call
with them would have been (interactive, and durable across a resume). Only a deny counts:
the human's decision is the approval a gating rule asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hitl_support import interactive, of_type, run_resolving, tool_messages

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule, UserInputDecision
from afk.core import Runner, RunnerConfig
from afk.llms import ScriptedModel, ToolCall
from afk.tools import tool

ran: list[dict[str, Any]] = []


@tool
def refund(order: str, amount: int) -> str:
    """Refund an order.

    Args:
        order: The order.
        amount: How much.
    """
    ran.append({"order": order, "amount": amount})
    return f"refunded {amount} on {order}"


@tool
def send_report(to: str) -> str:
    """Send the report.

    Args:
        to: Who gets it.
    """
    ran.append({"to": to})
    return f"sent to {to}"


def _big(event: Any) -> bool:
    return event.tool_name == "refund" and event.tool_args["amount"] > 1000


def _outside(event: Any) -> bool:
    return event.tool_name == "send_report" and not event.tool_args["to"].endswith("@corp.example")


POLICY = PolicyEngine(
    rules=[
        PolicyRule("no-big-refunds", action="deny", condition=_big, reason="Over the limit."),
        PolicyRule("inside-only", action="deny", condition=_outside, reason="Inside only."),
        PolicyRule("refunds-need-approval", tool="refund", action="request_approval"),
        PolicyRule(
            "ask-recipient",
            tool="send_report",
            action="request_user_input",
            input_target_arg="to",
            reason="Who gets it?",
        ),
    ]
)


def _agent(call: ToolCall) -> Agent:
    model = ScriptedModel([call, "done"])
    return Agent("ops", model, "x", tools=[refund, send_report])


async def test_an_edit_a_deny_rule_matches_is_denied_and_never_runs() -> None:
    ran.clear()
    runner, provider = interactive(POLICY)
    edited = ApprovalDecision(kind="allow", updated_tool_args={"order": "A1", "amount": 5000})
    result = await run_resolving(
        runner,
        _agent(ToolCall("refund", {"order": "A1", "amount": 50})),
        provider,
        lambda request: provider.resolve_approval(request.request_id, edited),
    )
    assert ran == []
    [execution] = result.tool_executions
    assert not execution.executed
    [message] = tool_messages(result.messages)
    assert "no-big-refunds" in message.content and "as decided" in message.content
    actions = [(e.action, e.rule_id) for e in of_type(result, "policy_decision")]
    assert actions == [
        ("request_approval", "refunds-need-approval"),
        ("deny", "no-big-refunds"),
    ]


async def test_an_edit_within_the_rules_runs_as_edited() -> None:
    ran.clear()
    runner, provider = interactive(POLICY)
    edited = ApprovalDecision(kind="allow", updated_tool_args={"order": "A1", "amount": 40})
    result = await run_resolving(
        runner,
        _agent(ToolCall("refund", {"order": "A1", "amount": 50})),
        provider,
        lambda request: provider.resolve_approval(request.request_id, edited),
    )
    assert ran == [{"order": "A1", "amount": 40}] and result.state == "completed"


async def test_an_answer_filled_into_an_argument_meets_the_deny_rules() -> None:
    ran.clear()
    runner, provider = interactive(POLICY)
    result = await run_resolving(
        runner,
        _agent(ToolCall("send_report", {"to": "ops@corp.example"})),
        provider,
        lambda request: provider.resolve_input(
            request.request_id, UserInputDecision(kind="allow", value="me@elsewhere.example")
        ),
    )
    assert ran == []
    assert "inside-only" in tool_messages(result.messages)[0].content


async def test_a_durable_edit_is_checked_when_the_run_resumes(tmp_path: Path) -> None:
    ran.clear()
    config = RunnerConfig(interaction_mode="external")
    async with Runner(POLICY, config=config, store=f"sqlite:///{tmp_path / 'r.db'}") as runner:
        agent = _agent(ToolCall("refund", {"order": "A1", "amount": 50}))
        paused = await runner.run(agent, user_message="go")
        [request] = paused.pending_requests
        edited = ApprovalDecision(
            kind="allow", approver="dana", updated_tool_args={"order": "A1", "amount": 9000}
        )
        await runner.resolve(request.request_id, edited)
        done = await runner.resume(paused.run_id, _agent(ToolCall("refund", {})))
        assert ran == [] and done.state == "completed"
        assert "no-big-refunds" in tool_messages(done.messages)[0].content
        assert runner.store is not None
        policy = [e for e in await runner.store.list_log() if e.kind == "policy_decision"]
        assert '"action":"deny"' in policy[-1].payload  # the ledger has the refusal's rule
        assert '"rule":"no-big-refunds"' in policy[-1].payload
