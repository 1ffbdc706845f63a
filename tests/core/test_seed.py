"""The two examples of the human-in-the-loop guide, run as written, with documented outcomes."""

# The guide's code is kept exactly as written, long lines included.
# ruff: noqa: E501

from __future__ import annotations

import asyncio
import threading

import pytest
from hitl_support import Calls, of_type, one, tool_messages, types

from afk.llms import ScriptedModel, ToolCall, register_model, unregister_model


@pytest.fixture
def seed_model():
    register_model(
        "gpt-5.2-mini", ScriptedModel([ToolCall("drop_table", {"name": "old_logs"}), "Done."])
    )
    yield
    unregister_model("gpt-5.2-mini")


def _seed_basic_example():
    # ---- verbatim from the guide ("Basic example") ----
    # fmt: off
    from afk.agents import Agent, PolicyEngine, PolicyRule
    from afk.core import Runner, RunnerConfig

    # Define a policy that gates destructive operations
    policy = PolicyEngine(rules=[
        PolicyRule(
            rule_id="gate-destructive-ops",
            description="Require human approval for any destructive operation",
            condition=lambda event: (
                event.tool_name is not None
                and any(keyword in event.tool_name.lower() for keyword in ["delete", "drop", "remove"])
            ),
            action="request_approval",
            reason="Destructive operations require human approval before execution.",
        ),
    ])

    agent = Agent(
        name="change-manager",
        model="gpt-5.2-mini",
        instructions="You manage infrastructure changes. Always use available tools.",
    )

    # Headless mode: approval requests are auto-resolved using approval_fallback
    runner = Runner(
        policy_engine=policy,
        config=RunnerConfig(
            interaction_mode="headless",
            approval_fallback="deny",  # Auto-deny in headless mode
        ),
    )
    result = runner.run_sync(agent, user_message="Drop old production tables")
    print(f"State: {result.state}")
    # In headless mode with approval_fallback="deny", the destructive action is blocked.
    # fmt: on
    # ---- end of the verbatim part ----
    return policy, result


def test_basic_example_headless_deny_blocks_the_drop_and_audits_it(seed_model, capsys):
    _, result = _seed_basic_example()

    assert "State: completed" in capsys.readouterr().out
    assert result.state == "completed"
    assert result.final_text == "Done."

    # The agent has no tools at all, yet the drop is seen, gated and audited.
    decision = one(result, "policy_decision")
    assert decision.tool_name == "drop_table"
    assert decision.action == "request_approval"
    assert decision.rule_id == "gate-destructive-ops"
    assert decision.matched_rules == ("gate-destructive-ops",)
    assert decision.reason == "Destructive operations require human approval before execution."

    requested = one(result, "approval_requested")
    assert requested.request.tool_name == "drop_table"
    assert requested.request.tool_args == {"name": "old_logs"}
    resolved = one(result, "approval_resolved")
    assert resolved.decided_by == "fallback"
    assert resolved.decision.kind == "deny"
    assert "run_paused" not in types(result)

    [execution] = result.tool_executions
    assert execution.tool_name == "drop_table"
    assert execution.denied is True
    assert execution.success is False
    assert execution.executed is False
    assert of_type(result, "tool_started") == []
    completed = one(result, "tool_completed")
    assert completed.denied is True

    [message] = tool_messages(result.messages)
    assert message.tool_call_id == execution.tool_call_id
    assert "denied" in message.content.lower()
    assert types(result)[-1] == "run_completed"


def _seed_interactive_example(policy):
    # ---- verbatim from the guide ("Interactive mode with an InteractionProvider") ----
    # fmt: off
    # isort: off
    from afk.core import Runner, RunnerConfig, InMemoryInteractiveProvider
    from afk.agents import ApprovalDecision  # noqa: F401  (the human's side uses it below)
    # isort: on

    # In-memory provider for testing (simulates human approval)
    provider = InMemoryInteractiveProvider()

    runner = Runner(
        policy_engine=policy,
        interaction_provider=provider,
        config=RunnerConfig(
            interaction_mode="interactive",
            approval_timeout_s=300.0,  # Wait up to 5 minutes for human response
        ),
    )

    # In a real application, a separate process or UI would call:
    # provider.resolve_approval(request_id, ApprovalDecision(kind="allow"))
    # fmt: on
    # ---- end of the verbatim part ----
    return provider, runner


def _agent_with_drop_table(calls: Calls):
    from afk.agents import Agent

    return Agent(
        name="change-manager",
        model="gpt-5.2-mini",
        instructions="You manage infrastructure changes. Always use available tools.",
        tools=[calls.drop_table_tool()],
    )


def _approve_from_another_thread(provider, seen: list):
    from hitl_support import wait_pending_blocking

    from afk.agents import ApprovalDecision

    def human():
        [request] = wait_pending_blocking(provider, 1)
        seen.append((threading.get_ident(), request))
        provider.resolve_approval(
            request.request_id, ApprovalDecision(kind="allow", approver="ops")
        )

    thread = threading.Thread(target=human)
    thread.start()
    return thread


def test_interactive_example_allow_from_another_thread_runs_the_tool_once(seed_model, capsys):
    policy, _ = _seed_basic_example()
    provider, runner = _seed_interactive_example(policy)
    calls = Calls()
    agent = _agent_with_drop_table(calls)

    seen: list = []
    thread = _approve_from_another_thread(provider, seen)
    result = runner.run_sync(agent, user_message="Drop old production tables")
    thread.join(timeout=5)

    assert seen and seen[0][0] != threading.get_ident()
    assert result.state == "completed"
    assert result.final_text == "Done."
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    resolved = one(result, "approval_resolved")
    assert resolved.decided_by == "human"
    assert resolved.approver == "ops"
    assert resolved.request_id == seen[0][1].request_id
    [execution] = result.tool_executions
    assert execution.success and execution.executed and execution.output == "dropped old_logs"
    assert provider.pending() == []


async def test_interactive_example_allow_from_another_thread_while_the_loop_runs(seed_model):
    policy, _ = await asyncio.to_thread(_seed_basic_example)
    provider, runner = _seed_interactive_example(policy)
    calls = Calls()
    agent = _agent_with_drop_table(calls)

    seen: list = []
    thread = _approve_from_another_thread(provider, seen)
    async with asyncio.timeout(5):
        result = await runner.run(agent, user_message="Drop old production tables")
    thread.join(timeout=5)

    assert result.state == "completed"
    assert calls.log == [("drop_table", {"name": "old_logs"})]
    assert one(result, "run_paused").request_ids == (seen[0][1].request_id,)
    assert one(result, "run_resumed").request_ids == (seen[0][1].request_id,)
