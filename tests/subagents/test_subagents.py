"""Sub-agents (Agent.as_tool): one pending set across the tree, each request naming its path;
the parent's policy sees the child's calls and authority only narrows; the top run's events
hold the tree's; a child that pauses pauses the tree, durably, and one resume continues it;
three levels deep, five gated calls run exactly once, also across a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tree_app import POLICY, refund, tree

from afk.agents import Agent, ApprovalDecision, PolicyEngine, PolicyRule
from afk.core import (
    ApprovalRequested,
    InMemoryInteractiveProvider,
    Runner,
    RunnerConfig,
    ToolStarted,
)
from afk.errors import ConfigurationError
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage
from afk.tools import ToolContext, tool

HERE = Path(__file__).parent
EXTERNAL = RunnerConfig(interaction_mode="external")
ALL_FIVE = ["R1", "R2", "R3", "R4", "R5"]


@pytest.fixture(autouse=True)
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "refunds.txt"
    path.touch()
    monkeypatch.setenv("AFK_TEST_SIDE_EFFECTS", str(path))
    return path


def ran(path: Path) -> list[str]:
    return sorted(path.read_text().split())


def _paths(requests: list[Any]) -> dict[str, tuple[str, ...]]:
    return {r.tool_args["order"]: tuple(p.split(":")[1] for p in r.path) for r in requests}


async def test_one_pending_set_across_the_tree_in_process(side_effects: Path) -> None:
    provider = InMemoryInteractiveProvider()
    runner = Runner(POLICY, provider, RunnerConfig(interaction_mode="interactive"))
    task = asyncio.create_task(runner.run(tree(), user_message="go"))
    seen: set[str] = set()
    while len(seen) < 5:
        for request in provider.pending():
            if request.request_id not in seen:
                seen.add(request.request_id)
                provider.resolve_approval(
                    request.request_id, ApprovalDecision(kind="allow", approver="ann")
                )
        await asyncio.sleep(0.002)
    result = await task
    assert result.state == "completed", result.error
    assert ran(side_effects) == ALL_FIVE
    asked = [e.request for e in result.events if isinstance(e, ApprovalRequested)]
    assert _paths(asked) == {
        "R1": (),
        "R2": ("manager",),
        "R3": ("manager",),
        "R4": ("manager", "clerk"),
        "R5": ("manager", "clerk"),
    }
    assert {r.run_id for r in asked} == {result.run_id}  # the tree's requests are the run's
    started = [e.tool_name for e in result.events if isinstance(e, ToolStarted)]
    assert started.count("refund") == 5 and "manager" in started and "clerk" in started
    assert [e.type for e in result.events].count("run_completed") == 1  # the children's end
    assert "refunded R4" in (result.final_text or "")


async def test_authority_only_narrows() -> None:
    deleted: list[str] = []

    @tool
    def delete(name: str) -> str:
        """Delete something."""
        deleted.append(name)
        return f"deleted {name}"

    def child_model(messages: list[Any], tools: list[Any]) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        return (
            ModelResponse(text=results[-1].content)
            if results
            else ToolCall("delete", {"name": "x"})
        )

    # The child's own policy allows its delete; the parent's denies deletes.
    permissive = PolicyEngine([PolicyRule("anything", action="allow")])
    child = Agent(
        "janitor", FunctionModel(child_model), "j", tools=[delete], policy_engine=permissive
    )

    def parent_model(messages: list[Any], tools: list[Any]) -> Any:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            return ModelResponse(text=results[-1].content)
        return ToolCall("janitor", {"input": "clean up"})

    parent = Agent("lead", FunctionModel(parent_model), "l", tools=[child.as_tool()])
    strict = PolicyEngine([PolicyRule("no-deletes", tool="delete", action="deny", reason="never")])
    result = await Runner(strict).run(parent, user_message="go")
    assert deleted == []
    assert "denied: never" in (result.final_text or "")


async def test_a_paused_tree_resumes_with_one_resume(store_url: str, side_effects: Path) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(tree(), user_message="go")
        assert paused.state == "paused"
        assert sorted(r.tool_args["order"] for r in paused.pending_requests) == ALL_FIVE
        inbox = await runner.pending_requests()
        assert sorted(r.tool_args["order"] for r in inbox) == ALL_FIVE  # one inbox of five
        assert _paths(list(inbox))["R5"] == ("manager", "clerk")
        assert ran(side_effects) == []
        for request in inbox[:4]:
            await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
        still = await runner.resume(paused.run_id, tree())
        assert still.state == "paused" and len(still.pending_requests) == 1
        await runner.resolve(inbox[4].request_id, ApprovalDecision(kind="allow", approver="ann"))
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as other:
        done = await other.resume(paused.run_id, tree())
    assert done.state == "completed", done.error
    assert ran(side_effects) == ALL_FIVE
    for order in ALL_FIVE:
        assert f"refunded {order}" in (done.final_text or "")


async def test_a_deny_deep_in_the_tree_reaches_the_top(store_url: str, side_effects: Path) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(tree(), user_message="go")
        for request in paused.pending_requests:
            kind = "deny" if request.tool_args["order"] == "R4" else "allow"
            decision = ApprovalDecision(kind=kind, reason="not R4", approver="ann")  # type: ignore[arg-type]
            await runner.resolve(request.request_id, decision)
        done = await runner.resume(paused.run_id, tree())
    assert done.state == "completed"
    assert ran(side_effects) == ["R1", "R2", "R3", "R5"]
    assert "denied: not R4" in (done.final_text or "")


RESUME = """
import asyncio, sys
sys.path.insert(0, {here!r})
from tree_app import POLICY, tree
from afk.core import Runner, RunnerConfig

async def main():
    config = RunnerConfig(interaction_mode="external")
    async with Runner(POLICY, config=config, store=sys.argv[1], lease_ttl_s=1.0) as r:
        done = await r.resume(sys.argv[2], tree())
        print(done.state, done.final_text, [c.error for c in done.tool_executions])

asyncio.run(main())
"""


@pytest.mark.slow
async def test_five_calls_three_levels_deep_run_once_across_a_sigkill(
    store_url: str, side_effects: Path
) -> None:
    async with Runner(POLICY, config=EXTERNAL, store=store_url) as runner:
        paused = await runner.run(tree(), user_message="go")
        for request in paused.pending_requests:
            await runner.resolve(request.request_id, ApprovalDecision(kind="allow", approver="ann"))
    script = RESUME.format(here=str(HERE))
    # Killed in the clerk's last model call: its two refunds (and, beside them, the others)
    # ran; the process dies before any checkpoint records it.
    env = {**os.environ, "AFK_TEST_CRASH_IN_MODEL": "clerk"}
    killed = subprocess.run(
        [sys.executable, "-c", script, store_url, paused.run_id],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    env.pop("AFK_TEST_CRASH_IN_MODEL")
    # The killed process's lease (1 s) has to run out before another process resumes.
    for _ in range(20):
        again = subprocess.run(
            [sys.executable, "-c", script, store_url, paused.run_id],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if "RunLockedError" not in again.stderr:
            break
        await asyncio.sleep(0.5)
    assert again.stdout.startswith("completed"), (again.stdout, again.stderr)
    assert ran(side_effects) == ALL_FIVE  # each once: the resume found their outcomes
    assert "outcome unknown" not in again.stdout


def test_as_tool_names_and_describes_the_agent() -> None:
    helper = Agent("Research Bot", "m", "r")
    made = helper.as_tool()
    assert made.name == "Research_Bot" and made.description == "Ask the Research Bot agent."
    assert made.parameters["required"] == ["input"]
    named = helper.as_tool(name="research", description="Looks things up.")
    assert (named.name, named.description) == ("research", "Looks things up.")


async def test_run_agent_needs_a_run_and_an_agent() -> None:
    ctx = ToolContext(run_id="r", agent_name="a", tool_call_id="c", idempotency_key="k", context={})
    with pytest.raises(ConfigurationError, match="only a tool running in a run"):
        await ctx.run_agent(Agent("x", "m", "i"), "hi")
    assert refund.name == "refund"
