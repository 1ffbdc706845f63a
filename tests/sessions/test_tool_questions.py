"""A tool that decides at run time that it needs a human: ToolContext.request_approval and
request_input, inline without a store, paused and re-entered with one (both backends)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from afk.agents import Agent, ApprovalDecision
from afk.approvals.requests import ApprovalRequest, ToolAnswer, UserInputRequest
from afk.core import (
    InMemoryInteractiveProvider,
    Runner,
    RunnerConfig,
    UserInputDecision,
)
from afk.errors import ConfigurationError, InvalidDecisionError
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage
from afk.tools import ToolContext, tool

ENTRIES: list[int] = []
DONE: list[str] = []
EXTERNAL = RunnerConfig(interaction_mode="external")
INTERACTIVE = RunnerConfig(interaction_mode="interactive")


@tool
async def transfer(amount: int, ctx: ToolContext) -> str:
    """Move money; large amounts need a human, who also names the memo."""
    ENTRIES.append(amount)
    if amount > 100:
        answer = await ctx.request_approval(
            reason=f"transfer of {amount} is over the limit", details={"limit": 100}
        )
        if not answer.approved:
            return f"not sent: {answer.reason}"
    memo = await ctx.request_input(
        prompt="memo?", schema={"type": "object", "properties": {"memo": {"type": "string"}}}
    )
    DONE.append(f"{amount}:{memo.value}")
    return f"sent {amount} ({memo.value['memo'] if memo.approved else 'no memo'})"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if not results:
        return ToolCall("transfer", {"amount": int(messages[1].content)})
    return ModelResponse(text=results[-1].content)


def agent() -> Agent:
    return Agent("bank", FunctionModel(_model), "You move money.", tools=[transfer])


@pytest.fixture(autouse=True)
def _clear() -> None:
    ENTRIES.clear()
    DONE.clear()


async def _answer_all(provider: InMemoryInteractiveProvider, answers: list[Any]) -> None:
    for answer in answers:
        while not provider.pending():
            await asyncio.sleep(0.002)
        [request] = provider.pending()
        if isinstance(request, ApprovalRequest):
            assert request.details == {"limit": 100}
            assert request.allowed_decisions == ("allow", "deny")
            provider.resolve_approval(request.request_id, answer)
        else:
            assert isinstance(request, UserInputRequest) and request.prompt == "memo?"
            with pytest.raises(InvalidDecisionError, match="does not fit its input_schema"):
                provider.resolve_input(
                    request.request_id,
                    UserInputDecision(kind="allow", value='{"memo": 5}', approver="ann"),
                )
            assert provider.pending() == [request]  # a misfit answer leaves it pending
            provider.resolve_input(request.request_id, answer)


async def test_without_a_store_the_tool_asks_inline() -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(interaction_provider=provider, config=INTERACTIVE)
    task = asyncio.create_task(runner.run(agent(), user_message="500"))
    await _answer_all(
        provider,
        [
            ApprovalDecision(kind="allow", approver="ann"),
            UserInputDecision(kind="allow", value='{"memo": "rent"}', approver="ann"),
        ],
    )
    result = await task
    assert result.final_text == "sent 500 (rent)"
    assert ENTRIES == [500] and DONE == ["500:{'memo': 'rent'}"]


async def test_headless_the_fallback_answers_and_denies() -> None:
    result = await Runner().run(agent(), user_message="500")
    assert result.final_text is not None and result.final_text.startswith("not sent")


async def test_with_a_store_the_run_pauses_and_the_tool_is_entered_again(store_url: str) -> None:
    async with Runner(config=EXTERNAL, store=store_url) as runner:
        first = await runner.run(agent(), user_message="500")
        assert first.state == "paused"
        [ask] = first.pending_requests
        assert isinstance(ask, ApprovalRequest) and ask.details == {"limit": 100}
        assert ask.reason == "transfer of 500 is over the limit"
        await runner.resolve(ask.request_id, ApprovalDecision(kind="allow", approver="ann"))
    async with Runner(config=EXTERNAL, store=store_url) as other:
        second = await other.resume(first.run_id, agent())
        assert second.state == "paused", second.error
        [memo] = second.pending_requests
        assert isinstance(memo, UserInputRequest) and memo.input_schema is not None
        with pytest.raises(InvalidDecisionError, match="not valid JSON"):
            await other.resolve(
                memo.request_id, UserInputDecision(kind="allow", value="rent", approver="ann")
            )
        for sneaky in ('{"memo": NaN}', '{"memo": "a", "memo": "b"}'):  # refused, not read
            with pytest.raises(InvalidDecisionError, match="input_schema"):
                await other.resolve(
                    memo.request_id, UserInputDecision(kind="allow", value=sneaky, approver="ann")
                )
        answer = UserInputDecision(kind="allow", value='{"memo": "rent"}', approver="ann")
        await other.resolve(memo.request_id, answer)
        third = await other.resume(first.run_id, agent())
    assert third.state == "completed", third.error
    assert third.final_text == "sent 500 (rent)"
    assert ENTRIES == [500, 500, 500]  # entered three times: before each answer, and after
    assert DONE == ["500:{'memo': 'rent'}"]  # what follows the last question ran once
    [call] = third.tool_executions
    assert call.executed and call.output == "sent 500 (rent)"


async def test_a_denied_question_is_the_tools_to_handle(store_url: str) -> None:
    async with Runner(config=EXTERNAL, store=store_url) as runner:
        first = await runner.run(agent(), user_message="900")
        [ask] = first.pending_requests
        await runner.resolve(
            ask.request_id, ApprovalDecision(kind="deny", reason="too much", approver="ann")
        )
        done = await runner.resume(first.run_id, agent())
    assert done.final_text == "not sent: too much" and DONE == []


async def test_interactive_with_a_store_waits_here_and_stores_the_questions(
    store_url: str,
) -> None:
    provider = InMemoryInteractiveProvider()
    async with Runner(interaction_provider=provider, config=INTERACTIVE, store=store_url) as r:
        task = asyncio.create_task(r.run(agent(), user_message="500"))
        await _answer_all(
            provider,
            [
                ApprovalDecision(kind="allow", approver="ann"),
                UserInputDecision(kind="allow", value='{"memo": "rent"}', approver="ann"),
            ],
        )
        result = await task
        assert result.final_text == "sent 500 (rent)", result.error
        assert r.store is not None
        stored = await r.store.list_requests(status=None, run_id=result.run_id)
    assert sorted(q.kind for q in stored) == ["approval", "user_input"]
    assert all(q.status == "decided" for q in stored)


async def test_a_tool_that_asks_differently_on_reentry_gets_no_answer(store_url: str) -> None:
    asked: list[str] = []

    @tool
    async def fickle(ctx: ToolContext) -> str:
        """Asks another question each time."""
        text = f"question {len(asked)}"
        asked.append(text)
        answer: ToolAnswer = await ctx.request_approval(reason=text)
        return f"approved={answer.approved}"

    def model(messages: list[Any], tools: list[Any]) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        return ModelResponse(text=results[-1].content) if results else ToolCall("fickle", {})

    fickle_agent = Agent("fickle", FunctionModel(model), "x", tools=[fickle])
    async with Runner(config=EXTERNAL, store=store_url) as runner:
        first = await runner.run(fickle_agent, user_message="go")
        [ask] = first.pending_requests
        await runner.resolve(ask.request_id, ApprovalDecision(kind="allow", approver="ann"))
        done = await runner.resume(first.run_id, fickle_agent)
    [call] = done.tool_executions
    assert not call.success and "same questions in the same order" in (call.error or "")


async def test_a_question_needs_a_run_and_json() -> None:
    ctx = ToolContext(run_id="r", agent_name="a", tool_call_id="c", idempotency_key="k", context={})
    with pytest.raises(ConfigurationError, match="only a tool running in a run"):
        await ctx.request_approval(reason="x")

    @tool
    async def bad(ctx: ToolContext) -> str:
        """Asks with details that are not JSON."""
        await ctx.request_approval(reason="x", details={"when": object()})
        return "no"

    def model(messages: list[Any], tools: list[Any]) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        return ModelResponse(text=results[-1].content) if results else ToolCall("bad", {})

    result = await Runner().run(Agent("b", FunctionModel(model), "x", tools=[bad]), user_message="")
    [call] = result.tool_executions
    assert "details" in (call.error or "") and "not JSON" in (call.error or "")


async def test_the_question_is_audited_in_the_ledger(store_url: str) -> None:
    from afk.audit import verify

    async with Runner(config=EXTERNAL, store=store_url) as runner:
        first = await runner.run(agent(), user_message="50")  # under the limit: memo only
        [memo] = first.pending_requests
        answer = UserInputDecision(kind="allow", value='{"memo": "x"}', approver="ann")
        await runner.resolve(memo.request_id, answer)
        done = await runner.resume(first.run_id, agent())
        assert done.final_text == "sent 50 (x)"
        assert runner.store is not None
        kinds = [e.kind for e in await runner.store.list_log()]
        assert "request_opened" in kinds and "decided" in kinds
        assert (await verify(runner.store)).ok
        snapshot = json.loads((await runner.store.load_run(first.run_id)).snapshot)  # type: ignore[union-attr]
    assert snapshot["schema_version"] >= 4
