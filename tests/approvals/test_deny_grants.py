"""A standing deny: ApprovalDecision(kind="deny", grant=GrantSpec(...)) refuses later calls it
covers without asking anyone, with its message; it outranks an allow grant; a row whose
effect is edited in the database covers nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.approvals.requests import GrantSpec
from afk.core import InMemoryInteractiveProvider, Runner, RunnerConfig
from afk.errors import InvalidDecisionError
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.store.store import GrantRecord
from afk.tools import tool

SENT: list[str] = []
EXTERNAL = RunnerConfig(interaction_mode="external")
POLICY = PolicyEngine([PolicyRule("mail", tool="send_email", action="request_approval")])


@tool
def send_email(to: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    results = [m for m in messages if isinstance(m, ToolMessage)]
    if results:
        return ModelResponse(text=results[-1].content)
    to = next(m.content for m in messages if isinstance(m, UserMessage))
    return ToolCall("send_email", {"to": to})


def agent() -> Agent:
    return Agent("mailer", FunctionModel(_model), "You send mail.", tools=[send_email])


def spec(**when: Any) -> GrantSpec:
    return GrantSpec(scope="agent", until=time.time() + 3600, when=when)


async def _deny_forever(runner: Runner, to: str, when: dict[str, Any]) -> str:
    paused = await runner.run(agent(), user_message=to)
    [request] = paused.pending_requests
    decision = ApprovalDecision(
        kind="deny", reason="never mail competitors", approver="ann", grant=spec(**when)
    )
    await runner.resolve(request.request_id, decision)
    done = await runner.resume(paused.run_id, agent())
    assert done.tool_executions[0].denied
    return paused.run_id


async def test_a_standing_deny_refuses_later_calls_unasked(store_url: str) -> None:
    SENT.clear()
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        await _deny_forever(runner, "x@rival.com", {"to": {"regex": "@rival\\.com$"}})
        again = await runner.run(agent(), user_message="y@rival.com")
        assert again.state == "completed" and again.pending_requests == []
        [call] = again.tool_executions
        assert call.denied and not call.executed and call.grant_id is not None
        assert "never mail competitors (standing deny grant_" in (call.error or "")
        other = await runner.run(agent(), user_message="friend@example.com")
        assert other.state == "paused"  # not covered: a human is asked as before
        [grant] = await runner.grants()
        assert grant.effect == "deny" and grant.reason == "never mail competitors"
        assert runner.store is not None
        kinds = [e.kind for e in await runner.store.list_log()]
        assert "grant_created" in kinds and "grant_used" in kinds
    assert SENT == []


async def test_a_deny_grant_outranks_an_allow_grant(store_url: str) -> None:
    SENT.clear()
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        await _deny_forever(runner, "b@rival.com", {"to": {"regex": "@rival\\.com$"}})
        paused = await runner.run(agent(), user_message="a@example.com")
        [request] = paused.pending_requests
        allow = ApprovalDecision(kind="allow", approver="bob", grant=spec())  # all mail
        await runner.resolve(request.request_id, allow)
        await runner.resume(paused.run_id, agent())
        blocked = await runner.run(agent(), user_message="c@rival.com")
        fine = await runner.run(agent(), user_message="d@example.com")
    assert blocked.tool_executions[0].denied  # both grants cover it: the deny decides
    assert fine.tool_executions[0].executed
    assert SENT == ["a@example.com", "d@example.com"]


async def test_an_edited_effect_does_not_verify(store_url: str) -> None:
    SENT.clear()
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        await _deny_forever(runner, "x@rival.com", {})
        store = runner.store
        assert store is not None
        [grant] = await store.list_grants()
        # What a database edit turning the deny into an allow looks like to afk:
        forged = GrantRecord(**{**_fields(grant), "effect": "allow", "reason": None})
        from afk.store._seal import record_ok

        assert record_ok(store.keys, grant) and not record_ok(store.keys, forged)


def _fields(grant: GrantRecord) -> dict[str, Any]:
    return {name: getattr(grant, name) for name in GrantRecord.__dataclass_fields__}


async def test_without_a_store_a_standing_deny_lives_in_memory() -> None:
    SENT.clear()
    provider = InMemoryInteractiveProvider()
    runner = Runner(POLICY, provider, RunnerConfig(interaction_mode="interactive"))
    first = asyncio.create_task(runner.run(agent(), user_message="z@example.com"))
    while not provider.pending():
        await asyncio.sleep(0.002)
    [request] = provider.pending()
    deny = ApprovalDecision(kind="deny", reason="no mail today", approver="ann", grant=spec())
    provider.resolve_approval(request.request_id, deny)
    assert (await first).tool_executions[0].denied
    second = await runner.run(agent(), user_message="w@example.com")  # nobody is asked
    assert "no mail today (standing deny grant_" in (second.tool_executions[0].error or "")
    assert provider.pending() == [] and SENT == []


def test_a_standing_deny_does_not_stop_runs() -> None:
    with pytest.raises(InvalidDecisionError, match="does not go with stop_run"):
        ApprovalDecision(kind="deny", stop_run=True, grant=spec())
