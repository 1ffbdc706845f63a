"""An agent whose tool asks a human for input (``ctx.request_input`` with a JSON schema), and
what the tool received, for the inbox's input-request tests."""

from __future__ import annotations

from typing import Any

import dba_support
from dba_support import agent
from web_support import sync, with_store

from afk.agents import Agent, PolicyEngine, PolicyRule
from afk.core import Runner, RunnerConfig
from afk.llms import FunctionModel, ModelResponse, ToolCall, ToolMessage, UserMessage
from afk.tools import ToolContext, tool

# The prompt and schema carry markup and a bidi override: the page must show both escaped.
PROMPT = "Who gets the <b>report</b> {title}?"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "description": "a team \u202e(not a person)"},
        "copies": {"type": "integer"},
    },
    "required": ["to"],
    "additionalProperties": False,
}
received: list[Any] = []  # what the tool got: the answer's value, or ("declined", reason)


@tool
async def send_report(title: str, ctx: ToolContext) -> str:
    """Send a report; a human names who gets it.

    Args:
        title: The report.
    """
    answer = await ctx.request_input(prompt=PROMPT.format(title=title), schema=SCHEMA)
    if not answer.approved:
        received.append(("declined", answer.reason))
        return f"not sent: {answer.reason}"
    received.append(answer.value)
    return f"sent {title} to {answer.value['to']}"


def _model(messages: list[Any], tools: list[Any]) -> Any:
    title = next(m.content for m in messages if isinstance(m, UserMessage))
    done = [m for m in messages if isinstance(m, ToolMessage)]
    if not done:
        return ToolCall("send_report", {"title": title})
    return ModelResponse(text=done[-1].content)


def reporter() -> Agent:
    return Agent("reporter", FunctionModel(_model, name="reporter"), "x", tools=[send_report])


def input_runner(store_url: str, *, timeout_s: float | None = None) -> Runner:
    config = RunnerConfig(interaction_mode="external", input_timeout_s=timeout_s)
    return Runner(config=config, store=store_url)


def ask(
    store_url: str, *titles: str, timeout_s: float | None = None, requested_by: str | None = None
) -> list[str]:
    """Paused runs (one per title), each waiting on the tool's question: the request ids."""

    async def go() -> list[str]:
        async with input_runner(store_url, timeout_s=timeout_s) as run:
            ids = []
            for title in titles:
                result = await run.run(reporter(), user_message=title, requested_by=requested_by)
                assert result.state == "paused", result
                ids.append(result.pending_requests[0].request_id)
            return ids

    return sync(go)


def resume_reports(store_url: str) -> list[Any]:
    """One worker pass over the reporter's runs: how each ready run ended."""

    async def go() -> list[Any]:
        async with input_runner(store_url) as run:
            return await run.resume_ready([reporter()])

    return sync(go)


def pause_under(store_url: str, rule_id: str, *tables: str) -> list[str]:
    """Paused drops (one per table) under a rule named ``rule_id``: their request ids."""
    policy = PolicyEngine([PolicyRule(rule_id, tool="drop_*", action="request_approval")])

    async def go() -> list[str]:
        config = RunnerConfig(interaction_mode="external")
        async with Runner(policy, config=config, store=store_url) as run:
            ids = []
            for table in tables:
                result = await run.run(agent(), user_message=table)
                assert result.state == "paused", result
                ids.append(result.pending_requests[0].request_id)
            return ids

    return sync(go)


def store_contents(store_url: str) -> Any:
    """Everything a read could change (rows, the ledger): the API tests' own measure
    (tests/dba_support.py), read through a store of its own."""
    return with_store(store_url, dba_support.store_contents)
