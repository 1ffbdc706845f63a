"""What a tool learns of its approval, and the policy of now meeting a run that waited."""

from __future__ import annotations

import asyncio
from typing import Any

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.approvals.principal import Principal
from afk.approvals.requests import CallApproval
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage
from afk.tools import ToolContext, tool

SEEN: list[CallApproval | None] = []
EXTERNAL = RunnerConfig(interaction_mode="external")


@tool
def refund(order: str, amount: int, ctx: ToolContext) -> str:
    """Refund an order."""
    SEEN.append(ctx.approval)
    return f"refunded {amount} on {order}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    if not any(isinstance(m, ToolMessage) for m in messages):
        return ToolCall("refund", {"order": "A-1", "amount": 90})
    return ModelResponse(text=next(m.content for m in messages if isinstance(m, ToolMessage)))


def agent() -> Agent:
    return Agent("billing", FunctionModel(_model), "You refund.", tools=[refund])


ASK = PolicyRule("refunds", tool="refund", action="request_approval", reason="money")
DENY = PolicyRule("freeze", tool="refund", action="deny", reason="refunds are frozen")


async def test_the_tool_sees_who_approved_it_interactively() -> None:
    SEEN.clear()
    provider = InMemoryInteractiveProvider()
    runner = Runner(PolicyEngine([ASK]), provider, RunnerConfig(interaction_mode="interactive"))
    task = asyncio.create_task(runner.run(agent(), user_message="go"))
    while not provider.pending():
        await asyncio.sleep(0.005)
    [request] = provider.pending()
    edit = ApprovalDecision(
        kind="allow", reason="checked", updated_tool_args={"order": "A-1", "amount": 50}
    )
    provider.resolve_approval(
        request.request_id, edit, principal=Principal(id="Ann", authenticated_by="app")
    )
    assert (await task).state == "completed"
    assert [
        CallApproval(
            decided_by="human",
            request_id=request.request_id,
            approver="ann",
            reason="checked",
            edited=True,
        )
    ] == SEEN


async def test_an_ungated_call_has_no_approval() -> None:
    SEEN.clear()
    await Runner().run(agent(), user_message="go")
    assert SEEN == [None]


async def test_the_tool_sees_the_durable_approver(store_url: str) -> None:
    SEEN.clear()
    async with Runner(PolicyEngine([ASK]), config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(agent(), user_message="go")
        [request] = paused.pending_requests
        bob = Principal(id="Bob", authenticated_by="token:tok_1")
        await runner.resolve(
            request.request_id, ApprovalDecision(kind="allow", reason="fine"), principal=bob
        )
    async with Runner(PolicyEngine([ASK]), config=EXTERNAL, store=store_url) as again:
        assert (await again.resume(paused.run_id, agent())).state == "completed"
    [seen] = SEEN
    assert seen is not None and seen.approver == "bob" and seen.reason == "fine"
    assert seen.decided_by == "human" and not seen.edited


async def test_a_deny_rule_added_while_the_run_waited_stops_an_approved_call(
    store_url: str,
) -> None:
    SEEN.clear()
    async with Runner(PolicyEngine([ASK]), config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(agent(), user_message="go")
        [request] = paused.pending_requests
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    async with Runner(PolicyEngine([ASK, DENY]), config=EXTERNAL, store=store_url) as later:
        done = await later.resume(paused.run_id, agent())
    assert done.state == "completed"
    [call] = done.tool_executions
    assert call.denied and not call.executed and SEEN == []
    assert "policy now denies it: rule 'freeze'" in (call.error or "")
    assert call.policy is not None and call.policy.rule_id == "freeze"


async def test_a_rule_removed_while_the_run_waited_does_not_skip_a_humans_deny(
    store_url: str,
) -> None:
    SEEN.clear()
    async with Runner(PolicyEngine([ASK]), config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(agent(), user_message="go")
        [request] = paused.pending_requests
        await runner.resolve(
            request.request_id, ApprovalDecision(kind="deny", reason="no", approver="ann")
        )
    async with Runner(PolicyEngine([]), config=EXTERNAL, store=store_url) as later:
        done = await later.resume(paused.run_id, agent())
    [call] = done.tool_executions
    assert call.denied and not call.executed and SEEN == []


async def test_a_deny_rule_added_while_the_run_waited_stops_an_approved_model_call(
    store_url: str,
) -> None:
    """A gated model call meets the policy of now on resume, as a gated tool call does."""
    calls: list[int] = []

    def counted(messages: list[Any], tools: list[Any]) -> Any:
        calls.append(len(messages))
        return ModelResponse(text="hello")

    def talker() -> Agent:
        return Agent("talker", FunctionModel(counted), "You talk.")

    model_rule = {"event_types": ("llm_before_execute",)}
    ask = PolicyRule("ask-model", action="request_approval", reason="cost", **model_rule)
    freeze = PolicyRule("model-freeze", action="deny", reason="frozen", **model_rule)
    async with Runner(PolicyEngine([ask]), config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(talker(), user_message="hi")
        [request] = paused.pending_requests
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    async with Runner(PolicyEngine([freeze, ask]), config=EXTERNAL, store=store_url) as later:
        done = await later.resume(paused.run_id, talker())
        assert later.store is not None
        ledger = [e for e in await later.store.list_log() if e.kind == "policy_decision"]
    assert done.state == "stopped" and calls == []
    decisions = [e for e in done.events if e.type == "policy_decision"]
    assert [(d.action, d.rule_id) for d in decisions][-1] == ("deny", "model-freeze")
    assert '"rule":"model-freeze"' in ledger[-1].payload
    async with Runner(PolicyEngine([ask]), config=EXTERNAL, store=store_url) as unchanged:
        again = await unchanged.run(talker(), user_message="hi")
        [second] = again.pending_requests
        await unchanged.resolve(second.request_id, ApprovalDecision(kind="allow", approver="ann"))
        resumed = await unchanged.resume(again.run_id, talker())
    assert resumed.state == "completed" and calls == [2]  # no deny rule: the approval stands
