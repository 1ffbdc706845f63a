"""Runs that call a real MCP server's tools, gated by the tools' annotations and server.

One stdio server serves the whole module (starting one costs the SDK's import time); each test
counts what the server ran from the ledger's lines it added.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from mcp_support import SCRIPT, ran

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import (
    ApprovalRequested,
    InMemoryInteractiveProvider,
    Runner,
    RunnerConfig,
    UserInputDecision,
    UserInputRequested,
)
from afk.llms import ScriptedModel, ToolCall
from afk.mcp import SPEC_DEFAULTS, MCPConnectionError, MCPServer, MCPTool
from afk.tools import tool

pytestmark = pytest.mark.asyncio(loop_scope="module")

GATE_DESTRUCTIVE = PolicyRule(
    "gate-destructive",
    action="request_approval",
    annotations={"destructiveHint": True},
    reason="destructive MCP tools need a human",
)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shop") / "ledger.txt"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shop(ledger: Path) -> AsyncIterator[MCPServer]:
    server = MCPServer.stdio(
        sys.executable, [str(SCRIPT)], name="shop", env={"SHOP_LEDGER": str(ledger)}
    )
    async with server:
        yield server


def clerk(shop: MCPServer, *turns: object, **options: object) -> Agent:
    model = ScriptedModel([*turns, "Done."])  # type: ignore[list-item]
    return Agent("clerk", model, mcp_servers=[shop], **options)  # type: ignore[arg-type]


@tool
def local_lookup(order: str) -> str:
    """Look an order up locally."""
    return order


async def test_the_tools_are_namespaced_and_carry_schema_annotations_and_server(
    shop: MCPServer,
) -> None:
    tools = {t.name: t for t in shop.tools}
    assert sorted(tools) == [
        "shop__add_note",
        "shop__broken",
        "shop__cancel_order",
        "shop__crash",
        "shop__delete_order",
        "shop__list_orders",
        "shop__stall",
        "shop__whoami",
    ]
    listed = tools["shop__list_orders"]
    assert isinstance(listed, MCPTool)
    assert (listed.server, listed.remote_name) == ("shop", "list_orders")
    assert listed.description == "List a customer's orders."
    assert listed.parameters["required"] == ["customer"]
    assert listed.spec().parameters == listed.parameters
    # Read-only: not destructive, whatever the spec's default for destructiveHint.
    assert dict(listed.annotations) == {
        "readOnlyHint": True,
        "destructiveHint": False,
        "idempotentHint": False,
        "openWorldHint": True,
    }
    assert dict(listed.declared_annotations) == {"readOnlyHint": True}
    assert dict(tools["shop__add_note"].annotations) == dict(SPEC_DEFAULTS)
    assert tools["shop__delete_order"].annotations["idempotentHint"] is True
    assert not tools["shop__delete_order"].idempotent  # afk never re-runs it after a crash
    agent = Agent("clerk", "gpt-5.2-mini", tools=[local_lookup], mcp_servers=[shop])
    assert list(agent.tools)[:2] == ["local_lookup", "shop__list_orders"]
    assert [s.name for s in agent.tool_specs] == list(agent.tools)
    assert local_lookup.annotations == {} and local_lookup.server is None
    closed = MCPServer.stdio(sys.executable, [str(SCRIPT)], name="shop")
    assert not closed.connected
    with pytest.raises(MCPConnectionError, match="async with server"):
        Agent("clerk", "gpt-5.2-mini", mcp_servers=[closed]).tools  # noqa: B018


async def test_read_only_runs_unasked_while_destructive_and_unannotated_ask_first(
    shop: MCPServer, ledger: Path
) -> None:
    before = ran(ledger)
    calls = [
        ToolCall("shop__list_orders", {"customer": "ada"}),
        ToolCall("shop__delete_order", {"order": "o-1"}),
        ToolCall("shop__add_note", {"order": "o-2", "text": "call back"}),
    ]
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        PolicyEngine([GATE_DESTRUCTIVE]),
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
    )
    asked: list[str] = []
    handle = runner.run_stream(clerk(shop, calls), user_message="tidy up ada's orders")
    async for event in handle:
        if isinstance(event, ApprovalRequested):
            asked.append(event.request.tool_name or "")
            decision = ApprovalDecision(kind="allow", approver="alice", reason="checked")
            provider.resolve_approval(event.request.request_id, decision)
    result = await handle.result()
    assert result.state == "completed", result.error
    assert sorted(asked) == ["shop__add_note", "shop__delete_order"]
    outputs = {e.tool_name: e.output for e in result.tool_executions}
    assert outputs == {
        "shop__list_orders": {"result": "orders of ada: o-1, o-2"},
        "shop__delete_order": {"result": "deleted o-1"},
        "shop__add_note": {"order": "o-2", "note": "call back"},
    }
    # The step's approved calls run side by side: the server may see them in either order.
    assert sorted(ran(ledger)[len(before) :]) == ["delete o-1", "note o-2 call back"]
    [listed] = [e for e in result.tool_executions if e.tool_name == "shop__list_orders"]
    assert listed.policy is not None and listed.policy.action == "allow"


async def test_a_denied_destructive_call_never_reaches_the_server(
    shop: MCPServer, ledger: Path
) -> None:
    before = ran(ledger)
    runner = Runner(PolicyEngine([GATE_DESTRUCTIVE]), config=RunnerConfig())  # headless: deny
    agent = clerk(shop, ToolCall("shop__delete_order", {"order": "o-9"}))
    result = await runner.run(agent, user_message="delete o-9")
    [execution] = result.tool_executions
    assert execution.denied and not execution.executed
    assert ran(ledger) == before


async def test_external_mode_pauses_then_runs_the_approved_call_exactly_once(
    shop: MCPServer, ledger: Path, tmp_path: Path
) -> None:
    before = ran(ledger)
    runner = Runner(
        PolicyEngine([GATE_DESTRUCTIVE]),
        config=RunnerConfig(interaction_mode="external"),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    try:
        agent = clerk(shop, ToolCall("shop__delete_order", {"order": "o-3"}))
        paused = await runner.run(agent, user_message="delete o-3")
        assert paused.state == "paused"
        [request] = paused.pending_requests
        assert (request.tool_name, request.tool_args) == ("shop__delete_order", {"order": "o-3"})
        assert ran(ledger) == before
        await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="bob"))
        [done] = await runner.resume_ready([agent])
        assert done.state == "completed", done.error
        assert done.tool_executions[-1].output == {"result": "deleted o-3"}
        assert await runner.resume_ready([agent]) == []
        assert ran(ledger)[len(before) :] == ["delete o-3"]
    finally:
        await runner.aclose()


async def test_server_matcher_and_tool_globs_see_the_namespace(
    shop: MCPServer, ledger: Path
) -> None:
    @tool
    def add_note(order: str, text: str) -> str:
        """A local tool of the same name: no server, no annotations."""
        return "local note"

    rules = [
        PolicyRule("no-shop-notes", action="deny", server="shop", tool="*__add_note"),
        PolicyRule("other-server", action="deny", server=["github", "jira"]),
        PolicyRule("destructive", action="deny", annotations={"destructiveHint": True}),
    ]
    calls = [
        ToolCall("shop__add_note", {"order": "o-1", "text": "x"}),
        ToolCall("add_note", {"order": "o-1", "text": "x"}),
        ToolCall("shop__list_orders", {"customer": "ada"}),
    ]
    agent = Agent("clerk", ScriptedModel([calls, "Done."]), tools=[add_note], mcp_servers=[shop])
    result = await Runner(PolicyEngine(rules)).run(agent, user_message="notes")
    by_name = {e.tool_name: e for e in result.tool_executions}
    decided = {name: e.policy.rule_id if e.policy else None for name, e in by_name.items()}
    # The shop's add_note is both destructive (unannotated) and the shop's: the deny rules
    # tie, so the first one decides. The local add_note matches neither server nor annotations.
    assert decided == {
        "shop__add_note": "no-shop-notes",
        "add_note": None,
        "shop__list_orders": None,
    }
    assert by_name["add_note"].output == "local note"
    assert by_name["shop__add_note"].denied


async def test_a_yaml_policy_file_uses_both_matchers(
    shop: MCPServer, ledger: Path, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        """
version: 1
rules:
  - id: shop-writes-need-approval
    server: shop
    annotations: {readOnlyHint: false}
    action: request_approval
    reason: the shop's writes need a human
  - id: never-destroy
    server: [shop]
    annotations: {destructiveHint: true, idempotentHint: true}
    action: deny
    priority: 10
""",
        encoding="utf-8",
    )
    engine = PolicyEngine.from_file(policy)
    before = ran(ledger)
    calls = [
        ToolCall("shop__delete_order", {"order": "o-4"}),
        ToolCall("shop__add_note", {"order": "o-4", "text": "hi"}),
        ToolCall("shop__list_orders", {"customer": "ada"}),
    ]
    result = await Runner(engine).run(clerk(shop, calls), user_message="x")  # headless
    decided = {
        e.tool_name: (e.policy.rule_id if e.policy else None) for e in result.tool_executions
    }
    assert decided == {
        "shop__delete_order": "never-destroy",
        "shop__add_note": "shop-writes-need-approval",
        "shop__list_orders": None,
    }
    assert [e.tool_name for e in result.tool_executions if e.executed] == ["shop__list_orders"]
    assert ran(ledger) == before


async def test_arguments_are_checked_against_the_input_schema_before_any_rule(
    shop: MCPServer, ledger: Path
) -> None:
    calls = [ToolCall("shop__add_note", {"order": 5}), ToolCall("shop__list_orders", {})]
    result = await Runner().run(clerk(shop, calls), user_message="x")
    errors = {e.tool_name: e.error for e in result.tool_executions}
    assert "order: 5 is not of type 'string'" in (errors["shop__add_note"] or "")
    assert "text: a required argument is missing" in (errors["shop__add_note"] or "")
    assert "customer: a required argument is missing" in (errors["shop__list_orders"] or "")
    assert not any(e.executed for e in result.tool_executions)


async def test_a_tool_error_and_a_timeout_are_the_calls_errors(shop: MCPServer) -> None:
    result = await Runner().run(clerk(shop, ToolCall("shop__broken", {})), user_message="x")
    [failed] = result.tool_executions
    assert failed.executed and not failed.success
    assert failed.error is not None and failed.error.startswith("MCPToolError: MCP server 'shop'")
    assert "tool 'broken' failed" in failed.error
    # A call that gets no answer fails after timeout_s; the session still serves the next one.
    shop.timeout_s = 0.3
    try:
        stalled = await asyncio.wait_for(
            Runner().run(clerk(shop, ToolCall("shop__stall", {})), user_message="x"), 10
        )
    finally:
        shop.timeout_s = 60.0
    assert "no answer within 0.3s" in (stalled.tool_executions[0].error or "")
    again = await Runner().run(
        clerk(shop, ToolCall("shop__list_orders", {"customer": "bo"})), user_message="x"
    )
    assert again.tool_executions[0].success


async def test_an_elicitation_is_asked_of_the_runs_human_as_a_user_input_request(
    shop: MCPServer, ledger: Path
) -> None:
    before = ran(ledger)
    provider = InMemoryInteractiveProvider()
    runner = Runner(
        PolicyEngine([GATE_DESTRUCTIVE]),
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
    )
    calls = [
        ToolCall("shop__cancel_order", {"order": "o-5"}),
        ToolCall("shop__cancel_order", {"order": "o-6"}),
    ]
    prompts: list[str] = []
    handle = runner.run_stream(clerk(shop, calls), user_message="cancel o-5 and o-6")
    async for event in handle:
        if isinstance(event, ApprovalRequested):
            allow = ApprovalDecision(kind="allow", approver="alice")
            provider.resolve_approval(event.request.request_id, allow)
        elif isinstance(event, UserInputRequested):
            request = event.request
            prompts.append(request.prompt)
            # The call's own question, opened under the rule that gated the call.
            assert request.rule_id == "gate-destructive"
            answer = (
                UserInputDecision(kind="allow", value='{"reason": "duplicate"}', approver="alice")
                if request.tool_args == {"order": "o-5"}
                else UserInputDecision(kind="deny", approver="alice")
            )
            provider.resolve_input(request.request_id, answer)
    result = await handle.result()
    assert result.state == "completed", result.error
    assert sorted(prompts) == ["Why cancel o-5?", "Why cancel o-6?"]  # the server's message
    outputs = [e.output for e in result.tool_executions]
    assert outputs == [
        {"result": "cancelled o-5: duplicate"},
        {"result": "kept o-6: the human did not say why (decline)"},
    ]
    assert ran(ledger)[len(before) :] == ["cancel o-5 duplicate"]


async def test_nobody_to_answer_is_a_cancel_and_a_store_makes_the_question_durable(
    shop: MCPServer, ledger: Path, tmp_path: Path
) -> None:
    before = ran(ledger)
    agent = clerk(shop, ToolCall("shop__cancel_order", {"order": "o-7"}))
    headless = await Runner().run(agent, user_message="cancel o-7")
    assert headless.tool_executions[0].output == {
        "result": "kept o-7: the human did not say why (cancel)"
    }
    # Interactive with a store: the call pauses on the question, stored, and the tool is
    # entered again once the human answered (here: denied).
    provider = InMemoryInteractiveProvider()
    stored = Runner(
        interaction_provider=provider,
        config=RunnerConfig(interaction_mode="interactive", approval_timeout_s=30),
        store=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    try:
        handle = stored.run_stream(agent, user_message="cancel o-7")
        async for event in handle:
            if isinstance(event, UserInputRequested):
                deny = UserInputDecision(kind="deny", approver="alice", reason="keep it")
                provider.resolve_input(event.request.request_id, deny)
        done = await handle.result()
        assert stored.store is not None
        [question] = await stored.store.list_requests(status=None, run_id=done.run_id)
    finally:
        await stored.aclose()
    assert done.tool_executions[0].output == {
        "result": "kept o-7: the human did not say why (decline)"
    }
    assert (question.kind, question.status) == ("user_input", "decided")
    assert ran(ledger) == before
